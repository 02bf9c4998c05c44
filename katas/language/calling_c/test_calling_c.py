"""Tests for calling_c: real C compiled by gcc, layouts checked against the compiler, oracles in Python."""

from __future__ import annotations

import ctypes
import errno
import gc
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from .calling_c import Point, Polygon, load

HERE = Path(__file__).parent
PROPERTY = settings(max_examples=60, deadline=None)

# Prints "<struct> <field> <offset> <size>" per field and "<struct> - <sizeof> <alignof>" per struct:
# the C compiler's own answer to "where does each field live".
LAYOUT_PROGRAM = r"""
#include <stdio.h>
#include <stddef.h>
#include "geometry.h"
#define STRUCT(s) printf(#s " - %zu %zu\n", sizeof(struct s), _Alignof(struct s))
#define FIELD(s, f) printf(#s " " #f " %zu %zu\n", offsetof(struct s, f), sizeof(((struct s *)0)->f))
int main(void)
{
    STRUCT(point); FIELD(point, tag); FIELD(point, x); FIELD(point, y);
    STRUCT(polygon); FIELD(polygon, n); FIELD(polygon, pts);
    return 0;
}
"""

# libgeometry with another geo_sort: the same contract (stable, by cmp, only during the call), a
# bottom-up merge sort that asks whether the RIGHT point goes before the LEFT one, as many stable
# merges do. geometry.c's insertion sort only asks cmp(left, right) > 0.
MERGE_SORT_LIBRARY = r"""
#define geo_sort geo_insertion_sort
#include "geometry.c"
#undef geo_sort

void geo_sort(struct polygon *poly, int (*cmp)(const struct point *a, const struct point *b))
{
    size_t n = poly->n;
    struct point *tmp = n > 1 ? malloc(n * sizeof *tmp) : NULL;
    if (tmp == NULL)
        return;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp(&poly->pts[j], &poly->pts[i]) < 0 ? poly->pts[j++] : poly->pts[i++];
            while (i < mid)
                tmp[k++] = poly->pts[i++];
            while (j < hi)
                tmp[k++] = poly->pts[j++];
        }
        memcpy(poly->pts, tmp, n * sizeof *tmp);
    }
    free(tmp);
}
"""

Tagged = tuple[int, float, float]


def _gcc(*args: str | Path) -> None:
    """Run gcc (katas.toml declares tools = ["gcc"]: without it the engine skips the kata)."""
    done = subprocess.run(["gcc", *map(str, args)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"gcc {' '.join(map(str, args))} failed:\n{done.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def libgeometry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """geometry.c compiled into a shared library, once per session."""
    out = tmp_path_factory.mktemp("libgeometry") / "libgeometry.so"
    _gcc("-shared", "-fPIC", "-O2", "-o", out, HERE / "geometry.c", "-lm")
    return out


@pytest.fixture(scope="session")
def libgeometry_merge_sort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """geometry.c with the merge-sort geo_sort above, as another shared library."""
    build = tmp_path_factory.mktemp("libgeometry_merge")
    (build / "merge.c").write_text(MERGE_SORT_LIBRARY)
    out = build / "libgeometry.so"
    _gcc("-shared", "-fPIC", "-O2", "-I", HERE, "-o", out, build / "merge.c", "-lm")
    return out


@pytest.fixture(scope="session")
def c_layout(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[int, int]]:
    """(struct, field) -> (offset, size), and (struct, "-") -> (sizeof, alignof), as gcc lays them out."""
    build = tmp_path_factory.mktemp("layout")
    (build / "layout.c").write_text(LAYOUT_PROGRAM)
    _gcc("-I", HERE, "-o", build / "layout", build / "layout.c")
    printed = subprocess.run([build / "layout"], capture_output=True, text=True, check=True, timeout=60).stdout
    layout = {}
    for line in printed.splitlines():
        struct, field, first, second = line.split()
        layout[struct, field] = (int(first), int(second))
    return layout


@pytest.fixture
def live_allocations(libgeometry: Path) -> Iterator[ctypes._CFuncPtr]:
    """geo_live_allocations through the tests' own handle (dlopen shares the library's globals)."""
    counter = ctypes.CDLL(str(libgeometry)).geo_live_allocations
    counter.argtypes = []
    counter.restype = ctypes.c_long
    yield counter


def _as_tuple(point: Point) -> Tagged:
    return (point.tag, point.x, point.y)


def _check_struct(cls: type[ctypes.Structure], name: str, fields: list[str], layout: dict) -> None:
    size, align = layout[name, "-"]
    got = (ctypes.sizeof(cls), ctypes.alignment(cls))
    assert got == (size, align), (
        f"sizeof(struct {name}) is {size} (alignment {align}) according to gcc, but ctypes.sizeof/alignment"
        f"({cls.__name__}) is {got[0]} (alignment {got[1]}): check _fields_ types and that there is no _pack_"
    )
    for field in fields:
        descriptor = getattr(cls, field, None)
        assert descriptor is not None, f"{cls.__name__} has no field {field!r}: declare it in _fields_"
        offset, fsize = layout[name, field]
        assert (descriptor.offset, descriptor.size) == (offset, fsize), (
            f"{cls.__name__}.{field}: gcc puts it at offset {offset}, size {fsize}; ctypes has offset "
            f"{descriptor.offset}, size {descriptor.size}. Use the ctypes type of exactly the C type "
            f"(int8_t -> c_int8, size_t -> c_size_t) and let ctypes add the padding"
        )


@pytest.mark.stage(1, "struct layouts")
def test_point_has_the_layout_gcc_gives_struct_point(c_layout: dict) -> None:
    _check_struct(Point, "point", ["tag", "x", "y"], c_layout)


@pytest.mark.stage(1, "struct layouts")
def test_polygon_has_the_layout_gcc_gives_struct_polygon(c_layout: dict) -> None:
    _check_struct(Polygon, "polygon", ["n", "pts"], c_layout)


@pytest.mark.stage(1, "struct layouts")
def test_polygon_fields_hold_a_size_t_and_a_pointer_to_points() -> None:
    names = [field[0] for field in Polygon._fields_]
    assert names == ["n", "pts"], f"Polygon._fields_ names are {names}: struct polygon has n, then pts"
    biggest = 2**64 - 1 if ctypes.sizeof(ctypes.c_size_t) == 8 else 2**32 - 1
    assert Polygon(biggest, None).n == biggest, (
        f"Polygon.n must hold every size_t, {biggest} included: size_t is unsigned (c_size_t), "
        "a signed type of the same size reads it as -1"
    )
    array = (Point * 2)(Point(1, 1.0, 2.0), Point(2, 3.0, 4.0))
    pts = Polygon(2, array).pts
    assert hasattr(pts, "contents") and _as_tuple(pts[1]) == (2, 3.0, 4.0), (
        f"Polygon(2, array).pts is {pts!r}: struct point * is POINTER(Point), so pts[1] reads the second "
        "Point of the array (c_void_p would keep a bare address)"
    )


# Every function of geometry.h and its number of parameters.
PROTOTYPES = {
    "geo_make_point": 3, "geo_distance": 2, "geo_translate": 3, "geo_centroid": 1, "geo_describe": 3,
    "geo_label": 1, "geo_free": 1, "geo_live_allocations": 0, "geo_sort": 2, "geo_checked_sqrt": 1,
}
VOID = ["geo_translate", "geo_free", "geo_sort"]


@pytest.mark.stage(2, "prototypes and structs")
def test_every_function_has_its_prototype_declared(libgeometry: Path) -> None:
    """README: Geometry.lib is the CDLL, with argtypes and restype declared for every function."""
    lib = load(libgeometry).lib
    assert isinstance(lib, ctypes.CDLL), f"Geometry.lib must be the ctypes.CDLL, got {lib!r}"
    for name, arity in PROTOTYPES.items():
        argtypes = getattr(lib, name).argtypes
        assert argtypes is not None and len(argtypes) == arity, (
            f"{name}.argtypes is {argtypes!r}; geometry.h gives it {arity} parameter(s): without argtypes "
            "ctypes guesses each argument's C type from the Python value, and a double cannot be guessed"
        )
    for name in VOID:
        assert getattr(lib, name).restype is None, (
            f"{name} returns void: restype = None (the default, c_int, hands back whatever is in rax)"
        )
    for name in ["geo_distance", "geo_checked_sqrt"]:
        assert getattr(lib, name).restype is ctypes.c_double, f"{name} returns double: restype = c_double"
    for name in ["geo_make_point", "geo_centroid"]:
        assert getattr(lib, name).restype is Point, f"{name} returns struct point by value: restype = Point"
    count = lib.geo_live_allocations.restype
    assert count is not None and ctypes.sizeof(count) == ctypes.sizeof(ctypes.c_long) and count(-1).value == -1, (
        f"geo_live_allocations returns long: restype = c_long (got {count!r})"
    )
    label = lib.geo_label.restype
    assert label is not None and ctypes.sizeof(label) == ctypes.sizeof(ctypes.c_void_p), (
        f"geo_label returns char *: a pointer restype (c_void_p, so the pointer survives for geo_free), got {label!r}"
    )


@pytest.mark.stage(2, "prototypes and structs")
def test_make_point_returns_a_struct_by_value_with_a_signed_tag(libgeometry: Path) -> None:
    geo = load(libgeometry)
    for tag, x, y in [(-3, 1.5, -2.25), (127, 0.1, 1e300), (-128, -0.0, 7.0)]:
        got = geo.make_point(tag, x, y)
        assert isinstance(got, Point), f"make_point must return a Point (restype = Point), got {got!r}"
        assert _as_tuple(got) == (tag, x, y), (
            f"make_point({tag}, {x}, {y}) came back as {_as_tuple(got)}: int8_t is signed (c_int8), and "
            "geo_make_point returns struct point by value (restype = Point)"
        )


@pytest.mark.stage(2, "prototypes and structs")
def test_distance_returns_a_double_not_an_int(libgeometry: Path) -> None:
    geo = load(libgeometry)
    got = geo.distance(Point(0, 0.0, 0.0), Point(1, 1.5, 2.0))
    assert got == 2.5, (
        f"distance((0, 0), (1.5, 2)) must be 2.5, got {got!r}: without restype = c_double ctypes reads a "
        "C int from the wrong register"
    )
    assert geo.distance(Point(0, 1.0, 1.0), Point(0, 2.0, 2.0)) == pytest.approx(math.sqrt(2), rel=1e-15)


@pytest.mark.stage(2, "prototypes and structs")
def test_translate_moves_the_point_in_place(libgeometry: Path) -> None:
    geo = load(libgeometry)
    point = Point(9, 1.0, -1.0)
    assert geo.translate(point, 0.5, -0.25) is None
    assert _as_tuple(point) == (9, 1.5, -1.25), (
        f"after translate(Point(9, 1.0, -1.0), 0.5, -0.25) the point is {_as_tuple(point)}: pass it by "
        "pointer (ctypes.byref) so C writes into the Point's own memory, not into a copy"
    )


@pytest.mark.stage(2, "prototypes and structs")
def test_wrong_argument_types_raise_argument_error(libgeometry: Path) -> None:
    """argtypes makes ctypes check and convert each argument instead of guessing."""
    lib = load(libgeometry).lib
    with pytest.raises(ctypes.ArgumentError):
        lib.geo_checked_sqrt("4")  # without argtypes: a wchar_t* where C reads a double
    with pytest.raises(ctypes.ArgumentError):
        lib.geo_distance(Polygon(), Point())  # without argtypes: whatever bytes are on the stack
    assert lib.geo_checked_sqrt(4) == 2.0, "with argtypes = [c_double], the int 4 is converted to 4.0"


finite = st.floats(-1e6, 1e6, allow_nan=False)
tagged = st.tuples(st.integers(-128, 127), finite, finite)


@pytest.mark.stage(2, "prototypes and structs")
@PROPERTY
@given(st.lists(tagged, min_size=1, max_size=40))
def test_centroid_is_the_mean_of_the_points(libgeometry: Path, points: list[Tagged]) -> None:
    geo = load(libgeometry)
    want = (sum(p[1] for p in points) / len(points), sum(p[2] for p in points) / len(points))
    got = geo.centroid([Point(*p) for p in points])
    assert isinstance(got, tuple), f"centroid must return a tuple (x, y), got {got!r}"
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (
        f"centroid of {points} is {want}, got {got}: is Polygon.n the count and pts the array's address?"
    )


@pytest.mark.stage(2, "prototypes and structs")
def test_centroid_of_no_points_is_a_value_error(libgeometry: Path) -> None:
    with pytest.raises(ValueError):
        load(libgeometry).centroid([])


@pytest.mark.stage(3, "strings and errno")
@PROPERTY
@given(st.tuples(st.integers(-128, 127), st.floats(allow_nan=False), st.floats(allow_nan=False)))
@example((-7, 1e300, -2.5))
@example((100, 123456789.0, -1e-9))
def test_describe_returns_the_whole_text_of_any_length(libgeometry: Path, point: Tagged) -> None:
    tag, x, y = point
    want = f"point #{tag} at ({x:.3f}, {y:.3f})"  # Python's .3f rounds exactly as glibc's printf
    got = load(libgeometry).describe(Point(*point))
    assert got == want, (
        f"describe{point} must be {want!r} ({len(want)} chars), got {got!r}: {_describe_cause(got, want)}"
    )


def _describe_cause(got: object, want: str) -> str:
    """Why describe's text differs, read from its shape."""
    if got == want[:-1]:
        return (
            "exactly the last character is missing: geo_describe, like snprintf, writes at most `size` "
            "bytes INCLUDING the terminating NUL, so the buffer (and the size you pass) must be the "
            "returned length + 1"
        )
    if isinstance(got, str) and want.startswith(got):
        return (
            f"cut after {len(got)} characters: a fixed buffer truncates long numbers; call geo_describe "
            "once with (NULL, 0) to learn the length, then with a buffer of length + 1"
        )
    return "not the text C formatted: pass the Point by pointer and decode the buffer up to its NUL"


def _label_oracle(tag: int, x: float, y: float) -> str:
    if x == 0 or y == 0:
        return f"P{tag} on an axis"
    quadrant = {(True, True): "I", (False, True): "II", (False, False): "III", (True, False): "IV"}
    return f"P{tag} in quadrant {quadrant[x > 0, y > 0]}"


@pytest.mark.stage(3, "strings and errno")
def test_label_returns_the_c_string(libgeometry: Path) -> None:
    geo = load(libgeometry)
    for point in [(1, 2.0, 3.0), (-2, -1.0, 0.5), (3, -1.0, -1.0), (4, 5.0, -5.0), (-128, 0.0, 9.0)]:
        want = _label_oracle(*point)
        got = geo.label(Point(*point))
        assert got == want, f"label{point} must be {want!r}, got {got!r}"


@pytest.mark.stage(3, "strings and errno")
def test_label_frees_every_string_with_geo_free(libgeometry: Path, live_allocations: ctypes._CFuncPtr) -> None:
    geo = load(libgeometry)
    before = live_allocations()
    for i in range(200):
        geo.label(Point(i % 100, 1.0 + i, -2.0))
    gc.collect()
    leaked = live_allocations() - before
    assert leaked == 0, (
        f"200 calls to label() left {leaked} strings alive (geo_live_allocations went from {before} to "
        f"{before + leaked}): declare restype = c_void_p (c_char_p copies the text and loses the pointer), "
        "copy the text with ctypes.string_at, then hand the pointer to the library's geo_free"
    )


def _check_sorted(got: list[Point], points: list[Tagged], key_name: str, library: str = "geometry.c") -> None:
    want = sorted(points, key=lambda p: p[1])
    got_tuples = [_as_tuple(p) for p in got]
    assert got_tuples == want, (
        f"sort_points({points}, key={key_name}) with {library}'s geo_sort must equal sorted(points, "
        f"key={key_name}) = {want}, got {got_tuples}: {_sort_cause(got_tuples, want)}"
    )


def _sort_cause(got: list[Tagged], want: list[Tagged]) -> str:
    """Why the order differs: ties moved (no 0 for equal keys), close keys unordered, or neither."""
    keys = [p[1] for p in got]
    if sorted(got) == sorted(want) and keys == [p[1] for p in want]:
        return (
            "the keys are in order, but points with EQUAL keys changed places: for equal keys the "
            "comparator must return 0 (geometry.h: 0 keeps the order). One that never returns 0 "
            "(`-1 if ka < kb else 1`, `1 if ka > kb else -1`, `(ka > kb) - (ka <= kb)`) tells C that one "
            "of two equal points must go first, and a stable sort obeys"
        )
    inverted = [keys[i] - keys[j] for i in range(len(keys)) for j in range(i + 1, len(keys)) if keys[i] > keys[j]]
    if inverted and max(inverted) < 1:
        return (
            "only keys less than 1 apart are out of order: int(ka - kb) truncates their difference to 0 "
            "(\"equal\"); return the sign, (ka > kb) - (ka < kb)"
        )
    return "the comparator returns an int whose sign says the order (negative, 0, positive)"


keys = st.one_of(st.integers(-3, 3).map(float), st.floats(-10, 10, allow_nan=False))


@pytest.mark.stage(4, "callbacks into python")
@PROPERTY
@given(st.lists(st.tuples(st.integers(-128, 127), keys, finite), max_size=25))
def test_sort_points_matches_sorted(libgeometry: Path, points: list[Tagged]) -> None:
    got = load(libgeometry).sort_points([Point(*p) for p in points], key=lambda p: p.x)
    assert isinstance(got, list), f"sort_points must return a list of Point, got {got!r}"
    _check_sorted(got, points, "x")


@pytest.mark.stage(4, "callbacks into python")
@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(-128, 127), keys, finite), max_size=25))
@example([(1, 0.0, 0.0), (2, 0.0, 0.0)])
def test_sort_points_is_stable_with_another_stable_sort(libgeometry_merge_sort: Path, points: list[Tagged]) -> None:
    """A library whose sort asks cmp(right, left) < 0: a comparator that is not 0 for ties shows."""
    got = load(libgeometry_merge_sort).sort_points([Point(*p) for p in points], key=lambda p: p.x)
    _check_sorted(got, points, "x", library="a merge sort")


@pytest.mark.stage(4, "callbacks into python")
def test_sort_points_keeps_equal_keys_in_order(libgeometry: Path, libgeometry_merge_sort: Path) -> None:
    points = [(1, 1.0, 0.0), (2, 0.0, 0.0), (3, 1.0, 0.0), (4, 0.0, 0.0), (5, 1.0, 0.0)]
    for library, name in [(libgeometry, "geometry.c"), (libgeometry_merge_sort, "a merge sort")]:
        got = load(library).sort_points([Point(*p) for p in points], key=lambda p: p.x)
        _check_sorted(got, points, "x", library=name)


@pytest.mark.stage(4, "callbacks into python")
def test_sort_points_orders_keys_closer_than_one(libgeometry: Path) -> None:
    points = [(1, 0.75, 0.0), (2, 0.5, 0.0), (3, 0.25, 0.0), (4, 0.0, 0.0)]
    got = load(libgeometry).sort_points([Point(*p) for p in points], key=lambda p: p.x)
    _check_sorted(got, points, "x")


@pytest.mark.stage(4, "callbacks into python")
def test_sort_points_survives_the_garbage_collector(libgeometry: Path) -> None:
    """The callback object must stay alive while C may call it, across many calls and collections."""
    geo = load(libgeometry)
    points = [(i, float((i * 7) % 11), float(-i)) for i in range(12)]
    for _ in range(40):
        gc.collect()
        got = geo.sort_points([Point(*p) for p in points], key=lambda p: p.x)
        _check_sorted(got, points, "x")


@pytest.mark.stage(4, "callbacks into python")
def test_an_exception_in_key_comes_out_of_sort_points(libgeometry: Path) -> None:
    """Exceptions cannot unwind through C: the wrapper must catch them in the callback and re-raise."""

    def key(point: Point) -> float:
        if point.tag == 2:
            raise LookupError("no key for tag 2")
        return point.x

    points = [Point(1, 1.0, 0.0), Point(2, 0.0, 0.0), Point(3, 2.0, 0.0)]
    try:
        got = load(libgeometry).sort_points(points, key=key)
    except LookupError as exc:
        assert exc.args == ("no key for tag 2",), f"sort_points must re-raise key's own exception, got {exc!r}"
    else:
        pytest.fail(
            f"sort_points returned {[_as_tuple(p) for p in got]} although key raised LookupError: ctypes "
            "swallows exceptions in callbacks (prints them, returns 0 to C); catch it in the comparator, "
            "remember it, and re-raise it after geo_sort returns",
            pytrace=False,
        )


@pytest.mark.stage(4, "callbacks into python")
def test_sort_points_leaves_nothing_for_ctypes_to_report(libgeometry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What escapes a callback (an exception, a result that is not an int) ctypes reports and drops."""
    reported: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    geo = load(libgeometry)

    def key(point: Point) -> float:
        if point.tag == 2:
            raise LookupError("no key for tag 2")
        return point.x

    with pytest.raises(LookupError):
        geo.sort_points([Point(1, 1.0, 0.0), Point(2, 0.0, 0.0), Point(3, 2.0, 0.0), Point(4, -1.0, 0.0)], key=key)
    geo.sort_points([Point(i, float(i % 3), 0.0) for i in range(6)], key=lambda p: p.x)
    shown = [f"{type(r.exc_value).__name__}: {r.exc_value} ({r.err_msg})" for r in reported]  # type: ignore[attr-defined]
    assert not reported, (
        f"ctypes reported {shown} from the comparator: something escaped the callback. Catch what key "
        "raises (and re-raise it after geo_sort), and return an int on every path, the one after a "
        "failure included (None is not a C int: ctypes prints an error and passes 0)"
    )


class Interrupted(BaseException):
    """Like KeyboardInterrupt or SystemExit: a BaseException that is not an Exception."""


@pytest.mark.stage(4, "callbacks into python")
def test_a_base_exception_in_key_comes_out_of_sort_points_too(libgeometry: Path) -> None:
    def key(point: Point) -> float:
        if point.tag == 2:
            raise Interrupted("Ctrl-C while sorting")
        return point.x

    points = [Point(1, 1.0, 0.0), Point(2, 0.0, 0.0), Point(3, 2.0, 0.0)]
    try:
        got = load(libgeometry).sort_points(points, key=key)
    except Interrupted:
        return
    pytest.fail(
        f"sort_points returned {[_as_tuple(p) for p in got]} although key raised a BaseException (as "
        "KeyboardInterrupt and SystemExit are): ctypes swallows it in the callback like any other; "
        "catch BaseException, not Exception, and re-raise it after geo_sort returns",
        pytrace=False,
    )


@pytest.mark.stage(3, "strings and errno")
def test_checked_sqrt_returns_the_square_root(libgeometry: Path) -> None:
    geo = load(libgeometry)
    assert geo.checked_sqrt(2.25) == 1.5, "checked_sqrt(2.25) must be 1.5: restype = c_double"
    assert geo.checked_sqrt(2.0) == math.sqrt(2.0)


@pytest.mark.stage(3, "strings and errno")
@pytest.mark.parametrize(("x", "code"), [(-1.0, errno.EDOM), (math.nan, errno.EINVAL)], ids=["EDOM", "EINVAL"])
def test_checked_sqrt_raises_oserror_with_the_c_errno(libgeometry: Path, x: float, code: int) -> None:
    geo = load(libgeometry)
    name = errno.errorcode[code]
    try:
        got = geo.checked_sqrt(x)
    except OSError as exc:
        assert exc.errno == code, (
            f"checked_sqrt({x}) must raise OSError with errno {name} ({code}), got errno {exc.errno}: "
            "read the errno the C function set with ctypes.get_errno(), and load with use_errno=True "
            "(without it, ctypes.get_errno() is always 0)"
        )
    else:
        pytest.fail(
            f"checked_sqrt({x}) returned {got!r}; geo_checked_sqrt set errno to {name}, so it must raise "
            "OSError(errno, os.strerror(errno)): load with use_errno=True and read ctypes.get_errno()",
            pytrace=False,
        )


@pytest.mark.stage(3, "strings and errno")
def test_a_success_after_a_failure_is_not_an_error(libgeometry: Path) -> None:
    geo = load(libgeometry)
    with pytest.raises(OSError):
        geo.checked_sqrt(-4.0)
    try:
        got = geo.checked_sqrt(4.0)
    except OSError as exc:
        pytest.fail(
            f"checked_sqrt(4.0) raised {exc!r} after a failed call: C functions leave errno alone on "
            "success, so that was the stale errno of the previous call; ctypes.set_errno(0) before calling",
            pytrace=False,
        )
    assert got == 2.0
