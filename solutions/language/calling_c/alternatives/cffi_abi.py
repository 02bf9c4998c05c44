"""Call the C library libgeometry (geometry.h) from Python with ctypes: layouts, prototypes, ownership."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence

import cffi

# The calls go through cffi in ABI mode: it reads the C declarations below (pasted from
# geometry.h), so layouts and signatures come from C syntax instead of hand-written ctypes
# types. The README still asks for ctypes Point/Polygon classes and a CDLL with prototypes, so
# those are declared too; cffi works on the same memory (ffi.from_buffer on a ctypes Point).

_DECLARATIONS = """
struct point { int8_t tag; double x; double y; };
struct polygon { size_t n; struct point *pts; };
struct point geo_make_point(int8_t tag, double x, double y);
double geo_distance(struct point a, struct point b);
void geo_translate(struct point *p, double dx, double dy);
struct point geo_centroid(const struct polygon *poly);
int geo_describe(const struct point *p, char *buf, size_t size);
char *geo_label(const struct point *p);
void geo_free(char *s);
long geo_live_allocations(void);
void geo_sort(struct polygon *poly, int (*cmp)(const struct point *a, const struct point *b));
double geo_checked_sqrt(double x);
"""

ffi = cffi.FFI()
ffi.cdef(_DECLARATIONS)


class Point(ctypes.Structure):
    """`struct point { int8_t tag; double x; double y; }`, laid out exactly as the C compiler does."""

    _fields_ = [("tag", ctypes.c_int8), ("x", ctypes.c_double), ("y", ctypes.c_double)]


class Polygon(ctypes.Structure):
    """`struct polygon { size_t n; struct point *pts; }`."""

    _fields_ = [("n", ctypes.c_size_t), ("pts", ctypes.POINTER(Point))]


COMPARATOR = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Point), ctypes.POINTER(Point))


def _declare(lib: ctypes.CDLL) -> None:
    """The same prototypes for ctypes callers of Geometry.lib."""
    point_p, polygon_p = ctypes.POINTER(Point), ctypes.POINTER(Polygon)
    table: dict[str, tuple[object, list[object]]] = {
        "geo_make_point": (Point, [ctypes.c_int8, ctypes.c_double, ctypes.c_double]),
        "geo_distance": (ctypes.c_double, [Point, Point]),
        "geo_translate": (None, [point_p, ctypes.c_double, ctypes.c_double]),
        "geo_centroid": (Point, [polygon_p]),
        "geo_describe": (ctypes.c_int, [point_p, ctypes.c_char_p, ctypes.c_size_t]),
        "geo_label": (ctypes.c_void_p, [point_p]),
        "geo_free": (None, [ctypes.c_void_p]),
        "geo_live_allocations": (ctypes.c_long, []),
        "geo_sort": (None, [polygon_p, COMPARATOR]),
        "geo_checked_sqrt": (ctypes.c_double, [ctypes.c_double]),
    }
    for name, (restype, argtypes) in table.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes


class Geometry:
    """The loaded library: `lib` for ctypes, `c` for cffi, and Pythonic wrappers (through cffi)."""

    def __init__(self, lib: ctypes.CDLL, path: str) -> None:
        self.lib = lib
        _declare(lib)
        self.c = ffi.dlopen(path)  # the same .so: dlopen shares it, globals included

    @staticmethod
    def _struct(point: Point) -> object:
        """A `struct point *` onto the ctypes Point's own memory: C reads and writes it in place."""
        return ffi.cast("struct point *", ffi.from_buffer(point))

    def make_point(self, tag: int, x: float, y: float) -> Point:
        made = self.c.geo_make_point(tag, x, y)
        return Point(made.tag, made.x, made.y)

    def distance(self, a: Point, b: Point) -> float:
        return self.c.geo_distance(self._struct(a)[0], self._struct(b)[0])

    def translate(self, point: Point, dx: float, dy: float) -> None:
        self.c.geo_translate(self._struct(point), dx, dy)

    def centroid(self, points: Sequence[Point]) -> tuple[float, float]:
        if not points:
            raise ValueError("the centroid of no points is undefined")
        array = ffi.new("struct point[]", [(p.tag, p.x, p.y) for p in points])
        polygon = ffi.new("struct polygon *", (len(points), array))
        c = self.c.geo_centroid(polygon)
        return (c.x, c.y)

    def describe(self, point: Point) -> str:
        needed = self.c.geo_describe(self._struct(point), ffi.NULL, 0)
        buf = ffi.new("char[]", needed + 1)  # the text and its NUL
        self.c.geo_describe(self._struct(point), buf, len(buf))
        return ffi.string(buf).decode("ascii")

    def label(self, point: Point) -> str:
        raw = self.c.geo_label(self._struct(point))
        if raw == ffi.NULL:
            raise MemoryError("geo_label returned NULL")
        try:
            return ffi.string(raw).decode("ascii")
        finally:
            self.c.geo_free(raw)

    def sort_points(self, points: Sequence[Point], key: Callable[[Point], float]) -> list[Point]:
        failures: list[BaseException] = []

        def compare(a: object, b: object) -> int:
            if failures:
                return 0
            try:
                ka = key(Point(a.tag, a.x, a.y))  # type: ignore[attr-defined]
                kb = key(Point(b.tag, b.x, b.y))  # type: ignore[attr-defined]
            except BaseException as exc:  # cffi, like ctypes, would print it and return 0
                failures.append(exc)
                return 0
            return -1 if ka < kb else 1 if ka > kb else 0

        callback = ffi.callback("int(const struct point *, const struct point *)", compare)
        array = ffi.new("struct point[]", [(p.tag, p.x, p.y) for p in points])
        polygon = ffi.new("struct polygon *", (len(points), array))
        self.c.geo_sort(polygon, callback)  # `callback` is alive until here
        if failures:
            raise failures[0]
        return [Point(p.tag, p.x, p.y) for p in array]

    def checked_sqrt(self, x: float) -> float:
        ffi.errno = 0  # cffi saves errno right after each call; C sets it only on failure
        result = self.c.geo_checked_sqrt(x)
        err = ffi.errno
        if err:
            raise OSError(err, os.strerror(err), f"geo_checked_sqrt({x!r})")
        return result


def load(path: str | os.PathLike[str]) -> Geometry:
    """Loads the shared library at `path`, for ctypes (use_errno=True) and for cffi."""
    return Geometry(ctypes.CDLL(os.fspath(path), use_errno=True), os.fspath(path))
