/* geometry.c: libgeometry, a small C library to call from Python (see geometry.h). */
#include "geometry.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strings handed out by geo_label and not yet returned to geo_free. */
static long live_allocations = 0;

struct point geo_make_point(int8_t tag, double x, double y)
{
    struct point p;
    memset(&p, 0xAB, sizeof p); /* padding bytes are garbage, as they may be in any C struct */
    p.tag = tag;
    p.x = x;
    p.y = y;
    return p;
}

double geo_distance(struct point a, struct point b)
{
    return hypot(a.x - b.x, a.y - b.y);
}

void geo_translate(struct point *p, double dx, double dy)
{
    p->x += dx;
    p->y += dy;
}

struct point geo_centroid(const struct polygon *poly)
{
    double sx = 0.0, sy = 0.0;
    for (size_t i = 0; i < poly->n; i++) {
        sx += poly->pts[i].x;
        sy += poly->pts[i].y;
    }
    if (poly->n == 0)
        return geo_make_point(0, NAN, NAN);
    return geo_make_point(0, sx / (double)poly->n, sy / (double)poly->n);
}

int geo_describe(const struct point *p, char *buf, size_t size)
{
    return snprintf(buf, size, "point #%d at (%.3f, %.3f)", p->tag, p->x, p->y);
}

static const char *quadrant(const struct point *p)
{
    if (p->x == 0.0 || p->y == 0.0)
        return NULL;
    if (p->x > 0.0)
        return p->y > 0.0 ? "I" : "IV";
    return p->y > 0.0 ? "II" : "III";
}

char *geo_label(const struct point *p)
{
    const char *q = quadrant(p);
    int n = q ? snprintf(NULL, 0, "P%d in quadrant %s", p->tag, q)
              : snprintf(NULL, 0, "P%d on an axis", p->tag);
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    if (q)
        snprintf(s, (size_t)n + 1, "P%d in quadrant %s", p->tag, q);
    else
        snprintf(s, (size_t)n + 1, "P%d on an axis", p->tag);
    live_allocations++;
    return s;
}

void geo_free(char *s)
{
    if (s == NULL)
        return;
    live_allocations--;
    free(s);
}

long geo_live_allocations(void)
{
    return live_allocations;
}

void geo_sort(struct polygon *poly, int (*cmp)(const struct point *a, const struct point *b))
{
    /* Insertion sort: stable, and small inputs are all this library sees. */
    for (size_t i = 1; i < poly->n; i++) {
        struct point item = poly->pts[i];
        size_t j = i;
        while (j > 0 && cmp(&poly->pts[j - 1], &item) > 0) {
            poly->pts[j] = poly->pts[j - 1];
            j--;
        }
        poly->pts[j] = item;
    }
}

double geo_checked_sqrt(double x)
{
    if (isnan(x)) {
        errno = EINVAL;
        return NAN;
    }
    if (x < 0.0) {
        errno = EDOM;
        return NAN;
    }
    return sqrt(x);
}
