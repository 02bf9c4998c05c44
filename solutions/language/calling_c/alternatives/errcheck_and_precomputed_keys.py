"""Call the C library libgeometry (geometry.h) from Python with ctypes: layouts, prototypes, ownership."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence

# Another ctypes design: ctypes' own hooks do the work. errcheck turns geo_checked_sqrt's errno
# into OSError and takes geo_label's pointer (copy, then geo_free) right where the call returns;
# describe grows its buffer until the text fits (snprintf's other idiom); sort_points calls key
# once per point BEFORE any C runs, as sorted() does, so the callback only compares numbers and
# has nothing that could raise.


class Point(ctypes.Structure):
    """`struct point { int8_t tag; double x; double y; }`, laid out exactly as the C compiler does."""

    _fields_ = [("tag", ctypes.c_byte), ("x", ctypes.c_double), ("y", ctypes.c_double)]


class Polygon(ctypes.Structure):
    """`struct polygon { size_t n; struct point *pts; }`."""

    _fields_ = [("n", ctypes.c_size_t), ("pts", ctypes.POINTER(Point))]


COMPARATOR = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Point), ctypes.POINTER(Point))


def _identity(point: Point) -> tuple[int, str, str]:
    """A point's value, as a dict key (float.hex tells 0.0 from -0.0)."""
    return (point.tag, point.x.hex(), point.y.hex())


class Geometry:
    """The loaded library, with every prototype declared, and Pythonic wrappers around it."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        point_p = ctypes.POINTER(Point)
        prototypes = [
            ("geo_make_point", Point, [ctypes.c_byte, ctypes.c_double, ctypes.c_double]),
            ("geo_distance", ctypes.c_double, [Point, Point]),
            ("geo_translate", None, [point_p, ctypes.c_double, ctypes.c_double]),
            ("geo_centroid", Point, [ctypes.POINTER(Polygon)]),
            ("geo_describe", ctypes.c_int, [point_p, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t]),
            ("geo_label", ctypes.POINTER(ctypes.c_char), [point_p]),
            ("geo_free", None, [ctypes.POINTER(ctypes.c_char)]),
            ("geo_live_allocations", ctypes.c_long, []),
            ("geo_sort", None, [ctypes.POINTER(Polygon), COMPARATOR]),
            ("geo_checked_sqrt", ctypes.c_double, [ctypes.c_double]),
        ]
        for name, restype, argtypes in prototypes:
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
        lib.geo_checked_sqrt.errcheck = self._raise_errno
        lib.geo_label.errcheck = self._take_string

    @staticmethod
    def _raise_errno(result: float, function: object, args: tuple[object, ...]) -> float:
        err = ctypes.get_errno()  # ctypes' copy of errno, saved when the call returned
        if err:
            raise OSError(err, os.strerror(err), f"geo_checked_sqrt{args!r}")
        return result

    def _take_string(self, result: ctypes._Pointer[ctypes.c_char], function: object, args: object) -> str:
        if not result:
            raise MemoryError("geo_label returned NULL")
        try:
            return ctypes.string_at(result).decode("ascii")
        finally:
            self.lib.geo_free(result)

    def make_point(self, tag: int, x: float, y: float) -> Point:
        return self.lib.geo_make_point(tag, x, y)

    def distance(self, a: Point, b: Point) -> float:
        return self.lib.geo_distance(a, b)

    def translate(self, point: Point, dx: float, dy: float) -> None:
        self.lib.geo_translate(ctypes.pointer(point), dx, dy)

    def centroid(self, points: Sequence[Point]) -> tuple[float, float]:
        if len(points) == 0:
            raise ValueError("no points, no centroid")
        array = (Point * len(points))()
        for i, point in enumerate(points):
            ctypes.memmove(ctypes.byref(array, i * ctypes.sizeof(Point)), ctypes.byref(point), ctypes.sizeof(Point))
        c = self.lib.geo_centroid(ctypes.pointer(Polygon(len(points), array)))
        return c.x, c.y

    def describe(self, point: Point) -> str:
        size = 32
        while True:
            buf = ctypes.create_string_buffer(size)
            needed = self.lib.geo_describe(ctypes.byref(point), buf, size)
            if needed < size:  # it fitted, NUL included
                return buf.value.decode("ascii")
            size = needed + 1

    def label(self, point: Point) -> str:
        return self.lib.geo_label(ctypes.byref(point))  # errcheck copied and freed it

    def sort_points(self, points: Sequence[Point], key: Callable[[Point], float]) -> list[Point]:
        keys = {_identity(point): key(point) for point in points}  # key's exceptions come out here

        def compare(a: ctypes._Pointer[Point], b: ctypes._Pointer[Point]) -> int:
            ka, kb = keys[_identity(a.contents)], keys[_identity(b.contents)]
            return 1 if ka > kb else -1 if ka < kb else 0

        callback = COMPARATOR(compare)
        array = (Point * len(points))(*points)
        self.lib.geo_sort(ctypes.byref(Polygon(len(points), array)), callback)
        return [Point(p.tag, p.x, p.y) for p in array]

    def checked_sqrt(self, x: float) -> float:
        ctypes.set_errno(0)
        return self.lib.geo_checked_sqrt(x)  # errcheck raises OSError if errno was set


def load(path: str | os.PathLike[str]) -> Geometry:
    """Loads the shared library at `path` (use_errno=True, so errno survives the call)."""
    return Geometry(ctypes.CDLL(os.fspath(path), use_errno=True))
