"""User-facing lists read as words: "description, variety and winery", never ['description', 'variety', 'winery']."""

from __future__ import annotations

from collections.abc import Iterable


def words(items: Iterable[object], last: str = "and") -> str:
    """`items` as a sentence lists them: "a", "a and b", "a, b and c" ("or" with last="or"); "" for none."""
    names = [str(i) for i in items]
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} {last} {names[-1]}"
