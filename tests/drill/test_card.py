"""The drill card: the question before the drill, the traps and complexity after it."""

from __future__ import annotations

from pathlib import Path

from dojo.drill.card import card_of, load

PYTHON_STYLE = """# Counter drills

**The interviewer asks:** "Return the k most frequent words."

**Task.** Four functions.

## The traps

- `most_common()` ties come out in first-seen order.

## Complexity of a good answer

O(n log k) with a heap.

## What the tests check

Fixed examples and hypothesis.
"""


def test_a_drill_card_shows_the_question_first_and_keeps_the_traps_for_the_debrief():
    card = card_of(PYTHON_STYLE)
    assert card.question.startswith("# Counter drills")
    assert "The interviewer asks" in card.question and "Four functions" in card.question
    assert "most_common" not in card.question, "the traps would give the answer away"
    assert [heading for heading, _ in card.debrief] == ["The traps", "Complexity of a good answer"]
    assert "first-seen order" in card.debrief[0][1]


def test_other_readmes_show_their_first_section_and_a_hash_in_code_is_no_heading():
    text = "# Queue\n\n**Task.** Build it.\n\n```\n## not a heading\n```\n\n## The concept\n\nLocks.\n"
    card = card_of(text)
    assert "## not a heading" in card.question
    assert "Locks" not in card.question
    assert card.debrief == (), "a concept section is no debrief"


def test_a_good_answer_and_the_follow_ups_wait_for_the_debrief_and_sources_stay_out():
    text = ("# Queue\n\n> **The interviewer's question:** \"Build a queue?\"\n\n**Task.** Build it.\n\n"
            "## What a good answer covers\n\n- O(1) put.\n\n## Follow-ups\n\n- At 10x?\n\n"
            "## Sources\n\n- [docs](https://docs.python.org/3/)\n")
    card = card_of(text)
    assert "The interviewer's question" in card.question and "O(1)" not in card.question
    assert [heading for heading, _ in card.debrief] == ["What a good answer covers", "Follow-ups"]


def test_the_classic_bugs_section_is_part_of_the_debrief():
    card = card_of("# Job queue\n\nTask.\n\n## The classic bugs\n\nForgetting SKIP LOCKED.\n")
    assert card.debrief == (("The classic bugs", "Forgetting SKIP LOCKED."),)


def test_a_missing_readme_gives_a_stand_in(tmp_path: Path):
    assert "the tests are the specification" in load(tmp_path / "README.md").question
