"""The drill card of a kata, cut from its README: the question up front, the traps afterwards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Sections that would give the answer away during the drill: shown in the debrief instead, with
# what an interviewer asks next.
_DEBRIEF = re.compile(r"trap|complexity|classic bug|mistake|good answer|follow-up", re.IGNORECASE)
_HEADING = re.compile(r"^##\s+(.*)$")


@dataclass(frozen=True)
class Card:
    """`question`: the README up to its first `##` section (the interviewer's question and the
    task); `debrief`: (heading, text) of its traps and complexity sections, for after the drill."""

    question: str
    debrief: tuple[tuple[str, str], ...] = ()


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of each `##` section in order; the part before the first has heading ''."""
    found: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced  # a '## ' inside a code block is not a heading
        match = None if fenced else _HEADING.match(line)
        if match:
            found.append((match.group(1).strip(), []))
        else:
            found[-1][1].append(line)
    return [(heading, "\n".join(body).strip()) for heading, body in found]


def card_of(text: str) -> Card:
    """The drill card of a README's text."""
    parts = sections(text)
    question = parts[0][1]
    debrief = tuple((h, body) for h, body in parts[1:] if _DEBRIEF.search(h) and body)
    return Card(question, debrief)


def load(readme: Path) -> Card:
    """The card of the README at `readme`; a stand-in if the README is missing or unreadable."""
    try:
        return card_of(readme.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return Card(f"(no README at {readme}: the tests are the specification)")
