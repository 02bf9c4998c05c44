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

    # TODO: _fields_ with the ctypes type of exactly each C type, in C's order.
    _fields_ = []


class Polygon(ctypes.Structure):
    """`struct polygon { size_t n; struct point *pts; }`."""

    # TODO: _fields_ for the count and the pointer to the first point.
    _fields_ = []


class Geometry:
    """The loaded library, with every prototype declared, and Pythonic wrappers around it.

    >>> geo = load("/tmp/libgeometry.so")
    >>> geo.centroid([Point(0, 0.0, 0.0), Point(0, 2.0, 4.0)])
    (1.0, 2.0)
    """

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        # TODO: declare argtypes and restype of every function in geometry.h.

    def make_point(self, tag: int, x: float, y: float) -> Point:
        """geo_make_point: a struct returned by value."""
        # TODO
        raise NotImplementedError("Geometry.make_point")

    def distance(self, a: Point, b: Point) -> float:
        """geo_distance: two structs passed by value, a double returned."""
        # TODO
        raise NotImplementedError("Geometry.distance")

    def translate(self, point: Point, dx: float, dy: float) -> None:
        """geo_translate: moves `point` in place (C writes through the pointer into its memory)."""
        # TODO
        raise NotImplementedError("Geometry.translate")

    def centroid(self, points: Sequence[Point]) -> tuple[float, float]:
        """The mean (x, y) of `points`; ValueError if there are none."""
        # TODO: an array of Point, a Polygon pointing at it, geo_centroid.
        raise NotImplementedError("Geometry.centroid")

    def describe(self, point: Point) -> str:
        """geo_describe's text, whatever its length: ask for the size, then fill a buffer that big."""
        # TODO: the snprintf pattern, two calls.
        raise NotImplementedError("Geometry.describe")

    def label(self, point: Point) -> str:
        """geo_label's text; the C string is released with geo_free, even if decoding fails."""
        # TODO: copy the text out, then give the pointer back to geo_free.
        raise NotImplementedError("Geometry.label")

    def sort_points(self, points: Sequence[Point], key: Callable[[Point], float]) -> list[Point]:
        """The points sorted by `key`, stably, by geo_sort calling back into Python.

        An exception raised by `key` (any BaseException) comes out of sort_points; the comparator
        returns 0 for equal keys, and lets nothing escape for ctypes to report.
        """
        # TODO: a CFUNCTYPE comparator around key, alive for the whole call.
        raise NotImplementedError("Geometry.sort_points")

    def checked_sqrt(self, x: float) -> float:
        """sqrt(x); OSError with the errno geo_checked_sqrt set (EDOM, EINVAL) if it failed."""
        # TODO: errno, as C set it.
        raise NotImplementedError("Geometry.checked_sqrt")


def load(path: str | os.PathLike[str]) -> Geometry:
    """Loads the shared library at `path` (use_errno=True, so errno survives the call)."""
    # TODO
    raise NotImplementedError("load")
