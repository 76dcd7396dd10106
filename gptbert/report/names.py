"""Short display names for candidates, and the legend that says what each one is.

``CandidateResult.name`` stays the key everywhere (results store, run folders); the report
shows a short name instead, so that ``elmo-small(use_char_cnn=False,n_embd=128,intermediate_size=128)``
does not break every table and plot:

* a preset with overrides, ``base(k=v,...)``, becomes ``base (a)``, ``base (b)``, ... (letters
  per base, in candidate order); the overrides are in the legend;
* any other name longer than :data:`MAX_NAME` characters is cut in the middle, ``all-MiniLM-L…sst2-seed1``;
* a short name that would collide with another candidate's gets `` #2``, `` #3``, ...

Names that are already short stay as they are.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence

from gptbert.report.extras import overrides_text
from gptbert.report.tables import Table
from gptbert.results import CandidateResult, Comparison

__all__ = ["MAX_NAME", "display_names", "legend_table", "relabel"]

MAX_NAME = 24
"""Longest name shown as is."""

_VARIANT = re.compile(r"^(?P<base>[^()]+)\((?P<overrides>.*)\)$")


def _letters(i: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa', ..."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = string.ascii_lowercase[r] + out
    return out


def _cut(name: str, limit: int = MAX_NAME) -> str:
    """``name`` cut in the middle to ``limit`` characters (the end often tells runs apart: ``-seed1``)."""
    if len(name) <= limit:
        return name
    tail = (limit - 1) // 2
    return name[: limit - 1 - tail].rstrip("-_ .(,") + "…" + name[-tail:].lstrip("-_ .,)")


def display_names(candidates: Sequence[CandidateResult] | Comparison) -> dict[str, str]:
    """{candidate name: short display name}, unique and in candidate order."""
    cands = candidates.candidates if isinstance(candidates, Comparison) else list(candidates)
    variants: dict[str, int] = {}
    wanted: list[str] = []
    for c in cands:
        m = _VARIANT.match(c.name)
        if m and m.group("overrides"):
            base = _cut(m.group("base").strip(), MAX_NAME - 4)
            k = variants.get(base, 0)
            variants[base] = k + 1
            wanted.append(f"{base} ({_letters(k)})")
        else:
            wanted.append(_cut(c.name))
    out: dict[str, str] = {}
    taken = {c.name for c in cands if len(c.name) <= MAX_NAME and not _VARIANT.match(c.name)}
    used: set[str] = set()
    for c, short in zip(cands, wanted):
        name, k = short, 1
        while name in used or (name != c.name and name in taken):
            k += 1
            name = f"{short} #{k}"
        used.add(name)
        out[c.name] = name
    return out


def relabel(text: str, names: Mapping[str, str]) -> str:
    """``text`` with every long candidate name replaced by its display name (longest first)."""
    for full in sorted((n for n, s in names.items() if n != s), key=len, reverse=True):
        text = text.replace(full, names[full])
    return text


def legend_table(comparison: Comparison, names: Mapping[str, str]) -> Table:
    """What each short name stands for: family, source, changes from the preset, full name when cut."""
    rows = []
    for c in comparison.candidates:
        short = names.get(c.name, c.name)
        rows.append([short, c.family, c.source or "–", overrides_text(c) or "–",
                     c.name if short != c.name else "(same)"])
    return Table("Candidates", ["name", "family", "source", "changes from the preset", "full name"], rows)
