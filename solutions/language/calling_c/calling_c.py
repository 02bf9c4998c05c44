"""Call the C library libgeometry (geometry.h) from Python with ctypes: layouts, prototypes, ownership."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence


class Point(ctypes.Structure):
    """`struct point { int8_t tag; double x; double y; }`, laid out exactly as the C compiler does.

    >>> Point(tag=1, x=2.0, y=3.0).x
    2.0
    """

    # int8_t is signed and one byte: c_int8, not c_int (4 bytes, reads padding) nor c_uint8.
    # No _pack_: ctypes then pads like the platform C compiler, 7 bytes after tag so that x is
    # 8-aligned, which is what geometry.c was compiled with.
    _fields_ = [
        ("tag", ctypes.c_int8),
        ("x", ctypes.c_double),
        ("y", ctypes.c_double),
    ]


class Polygon(ctypes.Structure):
    """`struct polygon { size_t n; struct point *pts; }`."""

    # size_t is pointer-sized and unsigned: c_size_t, not c_int.
    _fields_ = [
        ("n", ctypes.c_size_t),
        ("pts", ctypes.POINTER(Point)),
    ]


# int (*cmp)(const struct point *, const struct point *): two pointers in, int out.
COMPARATOR = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Point), ctypes.POINTER(Point))


class Geometry:
    """The loaded library, with every prototype declared, and Pythonic wrappers around it.

    >>> geo = load("/tmp/libgeometry.so")
    >>> geo.centroid([Point(0, 0.0, 0.0), Point(0, 2.0, 4.0)])
    (1.0, 2.0)
    """

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        # Without argtypes ctypes guesses from the Python values (and a double cannot be guessed);
        # without restype it reads every result as a C int. Declare both for every function.
        lib.geo_make_point.argtypes = [ctypes.c_int8, ctypes.c_double, ctypes.c_double]
        lib.geo_make_point.restype = Point
        lib.geo_distance.argtypes = [Point, Point]
        lib.geo_distance.restype = ctypes.c_double
        lib.geo_translate.argtypes = [ctypes.POINTER(Point), ctypes.c_double, ctypes.c_double]
        lib.geo_translate.restype = None
        lib.geo_centroid.argtypes = [ctypes.POINTER(Polygon)]
        lib.geo_centroid.restype = Point
        lib.geo_describe.argtypes = [ctypes.POINTER(Point), ctypes.c_char_p, ctypes.c_size_t]
        lib.geo_describe.restype = ctypes.c_int
        # c_void_p, not c_char_p: c_char_p would hand back a bytes copy and lose the pointer
        # that geo_free needs, leaking every label.
        lib.geo_label.argtypes = [ctypes.POINTER(Point)]
        lib.geo_label.restype = ctypes.c_void_p
        lib.geo_free.argtypes = [ctypes.c_void_p]
        lib.geo_free.restype = None
        lib.geo_live_allocations.argtypes = []
        lib.geo_live_allocations.restype = ctypes.c_long
        lib.geo_sort.argtypes = [ctypes.POINTER(Polygon), COMPARATOR]
        lib.geo_sort.restype = None
        lib.geo_checked_sqrt.argtypes = [ctypes.c_double]
        lib.geo_checked_sqrt.restype = ctypes.c_double

    def make_point(self, tag: int, x: float, y: float) -> Point:
        """geo_make_point: a struct returned by value."""
        return self.lib.geo_make_point(tag, x, y)

    def distance(self, a: Point, b: Point) -> float:
        """geo_distance: two structs passed by value, a double returned."""
        return self.lib.geo_distance(a, b)

    def translate(self, point: Point, dx: float, dy: float) -> None:
        """geo_translate: moves `point` in place (C writes through the pointer into its memory)."""
        self.lib.geo_translate(ctypes.byref(point), dx, dy)

    def centroid(self, points: Sequence[Point]) -> tuple[float, float]:
        """The mean (x, y) of `points`; ValueError if there are none."""
        if not points:
            raise ValueError("the centroid of no points is undefined")
        # The array and the Polygon pointing into it are Python-owned and alive for the call.
        array = (Point * len(points))(*points)
        polygon = Polygon(len(points), array)
        c = self.lib.geo_centroid(ctypes.byref(polygon))
        return (c.x, c.y)

    def describe(self, point: Point) -> str:
        """geo_describe's text, whatever its length: ask for the size, then fill a buffer that big."""
        needed = self.lib.geo_describe(ctypes.byref(point), None, 0)
        buf = ctypes.create_string_buffer(needed + 1)  # + 1 for the NUL
        self.lib.geo_describe(ctypes.byref(point), buf, len(buf))
        return buf.value.decode("ascii")

    def label(self, point: Point) -> str:
        """geo_label's text; the C string is released with geo_free, even if decoding fails."""
        raw = self.lib.geo_label(ctypes.byref(point))
        if raw is None:
            raise MemoryError("geo_label returned NULL")
        try:
            return ctypes.string_at(raw).decode("ascii")  # copy out before the memory goes
        finally:
            self.lib.geo_free(raw)  # the library's allocator, not libc's free

    def sort_points(self, points: Sequence[Point], key: Callable[[Point], float]) -> list[Point]:
        """The points sorted by `key`, stably, by geo_sort calling back into Python.

        An exception raised by `key` (any BaseException) comes out of sort_points; the comparator
        returns 0 for equal keys, and lets nothing escape for ctypes to report.
        """
        failure: BaseException | None = None

        def compare(a: ctypes._Pointer[Point], b: ctypes._Pointer[Point]) -> int:
            # An exception cannot unwind through C frames: ctypes would print it and return 0.
            # Remember the first one (any BaseException: Ctrl-C too), stop calling key, and raise
            # it once C has returned.
            nonlocal failure
            if failure is None:
                try:
                    ka, kb = key(a.contents), key(b.contents)
                    # The sign only: int(ka - kb) would call 0.5 "equal", and 0 for equal keys is
                    # what keeps a stable sort stable (geometry.h: 0 keeps the order).
                    return (ka > kb) - (ka < kb)
                except BaseException as exc:
                    failure = exc
            return 0  # C needs an int; the order no longer matters, sort_points will raise

        # `callback` is a local that lives until this method returns, so the thunk C calls stays
        # alive for the whole of geo_sort (a C library that kept the pointer for later would need
        # it stored for as long as that).
        callback = COMPARATOR(compare)
        array = (Point * len(points))(*points)
        polygon = Polygon(len(points), array)
        self.lib.geo_sort(ctypes.byref(polygon), callback)
        if failure is not None:
            raise failure
        return [Point(p.tag, p.x, p.y) for p in array]  # copies, independent of the array

    def checked_sqrt(self, x: float) -> float:
        """sqrt(x); OSError with the errno geo_checked_sqrt set (EDOM, EINVAL) if it failed."""
        # With use_errno=True ctypes swaps its private errno copy with the real one around each
        # call; set it to 0 first so that a stale value from an earlier call is not mistaken.
        ctypes.set_errno(0)
        result = self.lib.geo_checked_sqrt(x)
        err = ctypes.get_errno()
        if err:
            raise OSError(err, os.strerror(err), f"geo_checked_sqrt({x!r})")
        return result


def load(path: str | os.PathLike[str]) -> Geometry:
    """Loads the shared library at `path` (use_errno=True, so errno survives the call)."""
    return Geometry(ctypes.CDLL(os.fspath(path), use_errno=True))
