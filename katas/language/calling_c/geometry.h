/* geometry.h: the public API of libgeometry, the C library calling_c.py wraps with ctypes. */
#ifndef GEOMETRY_H
#define GEOMETRY_H

#include <stddef.h>
#include <stdint.h>

/* A labelled point. The compiler pads after `tag` so that `x` sits on an 8-byte boundary. */
struct point {
    int8_t tag;
    double x;
    double y;
};

/* A view of `n` points; the caller owns the array `pts` points to. */
struct polygon {
    size_t n;
    struct point *pts;
};

/* Returns a point built from its fields (a struct returned by value). */
struct point geo_make_point(int8_t tag, double x, double y);

/* Euclidean distance between two points passed by value. */
double geo_distance(struct point a, struct point b);

/* Moves *p by (dx, dy) in place. */
void geo_translate(struct point *p, double dx, double dy);

/* The mean of the polygon's points (tag 0); NaN coordinates if poly->n == 0. */
struct point geo_centroid(const struct polygon *poly);

/* Writes "point #<tag> at (<x>, <y>)" (coordinates as "%.3f") into buf, snprintf-style:
 * writes at most size bytes including the terminating NUL, and returns the length of the
 * whole text (without the NUL) whatever size was. buf may be NULL when size is 0. */
int geo_describe(const struct point *p, char *buf, size_t size);

/* Returns a newly allocated "P<tag> in quadrant I|II|III|IV" or "P<tag> on an axis".
 * The caller owns it and must release it with geo_free (not free). */
char *geo_label(const struct point *p);

/* Releases a string returned by geo_label. geo_free(NULL) does nothing. */
void geo_free(char *s);

/* How many strings from geo_label are still live (allocated and not yet geo_free'd). */
long geo_live_allocations(void);

/* Sorts poly->pts in place, stably, by the comparator (negative: a before b, 0: keep the
 * order, positive: b before a). cmp is called only during this call. */
void geo_sort(struct polygon *poly, int (*cmp)(const struct point *a, const struct point *b));

/* sqrt(x). On failure returns NaN and sets errno: EDOM if x < 0, EINVAL if x is NaN. */
double geo_checked_sqrt(double x);

#endif
