"""Mutants and correct alternatives: the maintainer check sees holes and over-specified tests."""

from __future__ import annotations

import textwrap

from dojo.alternatives import load_alternatives
from dojo.catalogue import Kata, load
from dojo.mutation.mutants import (
    MutantResult,
    MutationReport,
    Record,
    choose,
    generate,
    load_declarations,
    run_mutants,
    write_record,
)
from dojo.mutation.operators import find_changes
from dojo.verify import Checks, verify_kata

from .conftest import FakeRepo

CLAMP = '''
    """Clamps."""
    def clamp(x: int, low: int, high: int) -> int:
        """Keep x within [low, high]."""
        if x < low:
            return low
        if x > high:
            return high
        return x
'''
# the boundary cases (x == low, x == high) are missing: `<` -> `<=` survives
CLAMP_TESTS = '''
    from .clamp import clamp

    def test_below_and_above():
        assert clamp(-5, 0, 10) == 0
        assert clamp(50, 0, 10) == 10

    def test_inside():
        assert clamp(4, 0, 10) == 4
'''


def _clamp_repo(repo: FakeRepo) -> Kata:
    stub = '"""Clamps."""\ndef clamp(x: int, low: int, high: int) -> int:\n    # TODO\n    raise NotImplementedError\n'
    repo.add_kata("clamp", stub=stub, solution=CLAMP, tests=CLAMP_TESTS)
    return load(repo.root / "katas.toml").get("clamp")


def _operators(source: str) -> list[tuple[str, str]]:
    text = textwrap.dedent(source)
    return [(c.operator, c.text) for c in find_changes(text)]


def test_docstrings_annotations_and_messages_are_never_mutated() -> None:
    changes = _operators('''
        """Module doc with < and 1."""
        def f(x: list[int] = None) -> int:
            """Doc: returns 1 when x < 2."""
            raise ValueError(f"bad {x + 1}")
    ''')
    assert changes == [], changes


def test_the_curriculum_operators_apply_where_they_should() -> None:
    operators = {op for op, _ in _operators('''
        import hmac
        def f(cond, a, b, sock):
            with cond:
                while not a:
                    cond.wait()
                cond.notify_all()
            try:
                sock.recv(1, timeout=2)
            except BaseException:
                pass
            finally:
                sock.close()
            return hmac.compare_digest(a, b)
    ''')}
    assert {"without_lock", "while_to_if", "notify_all_to_notify", "drop_timeout",
            "base_exception_to_exception", "drop_finally", "compare_digest_to_eq",
            "delete_call", "return_none", "drop_not"} <= operators


def test_mutant_ids_are_stable_when_other_lines_move(fake_repo: FakeRepo) -> None:
    kata = _clamp_repo(fake_repo)
    before = {m.id for m in generate(kata)}
    path = kata.solution_dir / "clamp.py"
    path.write_text("import os\n\n\n" + path.read_text())
    after = {m.id for m in generate(kata)}
    assert before and before == after


def test_a_surviving_mutant_is_reported_with_its_diff(fake_repo: FakeRepo) -> None:
    kata = _clamp_repo(fake_repo)
    report = run_mutants(kata)
    survivors = [m.one_line() for m in report.survivors]
    assert any("x <= low" in line for line in survivors), survivors
    assert report.score < 0.9
    assert any("below 90%" in p and "x <= low" in p for p in report.problems())


def test_an_equivalent_declared_with_a_reason_is_excluded_and_a_stale_one_is_reported(
    fake_repo: FakeRepo,
) -> None:
    kata = _clamp_repo(fake_repo)
    lt_to_le = next(m.id for m in generate(kata) if m.operator == "lt_to_le")
    (kata.solution_dir / "mutants.toml").write_text(
        f'[[equivalent]]\nid = "{lt_to_le}"\nreason = "for the test"\n\n'
        '[[equivalent]]\nid = "gone @ clamp.py: no such line"\nreason = "once was"\n'
    )
    chosen, report = choose(kata)
    assert lt_to_le not in {m.id for m in chosen}
    assert report.equivalent == 1
    assert report.stale == ["gone @ clamp.py: no such line"]
    assert any("no such mutant exists" in p for p in report.problems())


def test_the_sample_is_replayed_by_its_seed_and_changes_with_it(fake_repo: FakeRepo) -> None:
    kata = _clamp_repo(fake_repo)
    first = [m.id for m in choose(kata, sample=3, seed=1234)[0]]
    assert first == [m.id for m in choose(kata, sample=3, seed=1234)[0]]
    others = {tuple(m.id for m in choose(kata, sample=3, seed=s)[0]) for s in range(10)}
    assert len(first) == 3 and len(others) > 1



def test_without_a_seed_the_sample_is_the_katas_own_and_changes_when_the_kata_does(fake_repo: FakeRepo) -> None:
    """CI draws the sample a maintainer drew on the same tree: the seed comes from the kata's files."""
    kata = _clamp_repo(fake_repo)
    first = [m.id for m in choose(kata, sample=3)[0]]
    solution_dir = fake_repo.root / "solutions/demo/clamp"
    (solution_dir / "__pycache__").mkdir()
    (solution_dir / "__pycache__" / "clamp.cpython-311.pyc").write_bytes(b"compiled")
    assert [m.id for m in choose(kata, sample=3)[0]] == first, "a cache is not part of the kata"
    draws = {tuple(first)}
    for edit in range(8):  # an edit draws afresh: 3 of 9 mutants, the same draw 8 times is no chance
        tests = fake_repo.root / "katas/demo/clamp/test_clamp.py"
        tests.write_text(tests.read_text() + f"\n# edit {edit}\n")
        draws.add(tuple(m.id for m in choose(kata, sample=3)[0]))
    assert len(draws) > 1, "the sample never changed as the kata's tests did"

def test_a_rejected_alternative_is_reported_by_name_and_test(adder_repo: FakeRepo) -> None:
    solution_dir = adder_repo.root / "solutions/demo/adder"
    (solution_dir / "alternatives").mkdir()
    (solution_dir / "alternatives" / "via_sum.py").write_text(
        "def add(a: int, b: int) -> int:\n    return sum((a, b))\n"
    )
    (solution_dir / "alternatives.toml").write_text(textwrap.dedent('''
        [[alternative]]
        name = "via_sum"
        replaces = "adder.py"
        design = "sum() of a tuple"
        file = "alternatives/via_sum.py"

        [[alternative]]
        name = "positive_only"
        replaces = "adder.py"
        design = "(wrong, to see it rejected) abs of both"
        [[alternative.edit]]
        find = "return a + b"
        replace = "return abs(a) + abs(b)"
    '''))
    kata = load(adder_repo.root / "katas.toml").get("adder")
    assert [a.name for a in load_alternatives(kata)] == ["via_sum", "positive_only"]
    report = verify_kata(kata, Checks(repeat=2, mistakes=False))
    rejected = [p for p in report.problems if "rejected" in p]
    assert len(rejected) == 1, report.problems
    assert "positive_only" in rejected[0] and "test_adds_negative_numbers" in rejected[0]


def test_too_few_alternatives_and_a_low_score_only_warn_for_a_pending_kata(fake_repo: FakeRepo) -> None:
    kata = _clamp_repo(fake_repo)
    pending = verify_kata(kata, Checks(repeat=1, mistakes=False, mutants=True, pending=frozenset({kata.slug})))
    assert pending.problems == []
    assert any("alternative" in w for w in pending.warnings)
    assert any("mutation score" in w for w in pending.warnings)
    held = verify_kata(kata, Checks(repeat=1, mistakes=False, mutants=True))
    assert any("mutation score" in p for p in held.problems)


def test_a_sample_with_a_survivor_is_judged_by_the_exact_score(fake_repo: FakeRepo) -> None:
    """One survivor in a sample of 2 reads as 50 %; the gate runs every mutant before it fails a kata."""
    kata = _clamp_repo(fake_repo)
    everything = len(generate(kata))
    survivor_seed = next(
        seed for seed in range(200)
        if any(m.operator == "lt_to_le" for m in choose(kata, sample=2, seed=seed)[0])
    )
    report = verify_kata(kata, Checks(repeat=1, mistakes=False, alternatives=False, mutants=True,
                                      mutant_sample=2, seed=survivor_seed))
    assert report.mutation is not None
    assert report.mutation.escalated_from == 2 and report.mutation.judged == everything


def test_a_sample_is_judged_against_the_recorded_full_run(fake_repo: FakeRepo) -> None:
    """A survivor the record lists is expected; one the record says was killed is a regression."""
    kata = _clamp_repo(fake_repo)
    full = run_mutants(kata)
    path = write_record(kata, full)
    assert load_declarations(kata)[1] == Record(full.killed, full.judged, frozenset(m.id for m in full.survivors))
    everything = choose(kata)[0]
    sampled = choose(kata, sample=len(everything) - 1, seed=3)[1]  # a sample, judged by the record
    sampled.results = [MutantResult(m, killed=m.id not in sampled.record.survivors) for m in everything]  # type: ignore[union-attr]
    recorded_survivor_problems = [p for p in sampled.problems() if "killed these mutants" in p]
    assert recorded_survivor_problems == []
    assert any("recorded mutation score" in p for p in sampled.problems())  # clamp's record is low
    # now the tests lose their teeth: a mutant the record says was killed survives
    killed_before = next(m for m in everything if m.id not in sampled.record.survivors)  # type: ignore[union-attr]
    sampled.results = [MutantResult(killed_before, killed=False)]
    assert any("killed these mutants" in p and killed_before.one_line() in p for p in sampled.problems())
    path.write_text(path.read_text() + '\n[[survivor]]\nid = "gone @ clamp.py: x"\n')
    assert "gone @ clamp.py: x" in choose(kata)[1].stale


def test_a_new_survivor_gets_one_more_run_before_it_fails_the_kata(fake_repo: FakeRepo) -> None:
    """Recorded as killed, survives the sample: run again; a kill on the retry only warns."""
    kata = _clamp_repo(fake_repo)
    everything = generate(kata)
    write_record(kata, MutationReport(generated=len(everything), equivalent=0,
                                      results=[MutantResult(m, killed=True) for m in everything]))
    seed = next(s for s in range(200)
                if any(m.operator == "lt_to_le" for m in choose(kata, sample=2, seed=s)[0]))
    report = verify_kata(kata, Checks(repeat=1, mistakes=False, alternatives=False, mutants=True,
                                      mutant_sample=2, seed=seed))
    # the record claims every mutant was killed, but `x <= low` survives every run: a regression
    assert any("killed these mutants" in p and "x <= low" in p for p in report.problems)


def test_a_sample_skips_a_kata_before_its_rigor_pass(fake_repo: FakeRepo) -> None:
    kata = _clamp_repo(fake_repo)
    report = verify_kata(kata, Checks(repeat=1, mistakes=False, alternatives=False, mutants=True,
                                      mutant_sample=8, pending=frozenset({kata.slug})))
    assert report.mutation is None and report.problems == []
    assert any("not sampled" in w for w in report.warnings)
