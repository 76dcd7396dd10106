"""Source/target pairs and dialogues built from the shared corpora (TinyShakespeare, SST
snippets), for demos, tests and the README's generation figure (``gptbert data pairs``)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from gptbert.io.files import read_text_file


def shakespeare_speeches(path: str | Path) -> list[tuple[str, list[str]]]:
    """(speaker, lines) of each speech of a TinyShakespeare-style play text (``NAME:`` line,
    then the speech, then a blank line)."""
    speeches: list[tuple[str, list[str]]] = []
    block: list[str] = []
    for line in read_text_file(path).splitlines() + [""]:
        if line.strip():
            block.append(line.rstrip())
            continue
        if len(block) >= 2 and block[0].endswith(":") and block[0][:-1].strip():
            speeches.append((block[0][:-1].strip(), [b.strip() for b in block[1:]]))
        block = []
    return speeches


def _first_clause(text: str) -> str | None:
    m = re.search(r"[,;:]|\s--?\s|\s-\s", text)
    if m is None:
        return None
    clause = text[:m.start()].strip()
    return clause if len(clause.split()) >= 3 and len(clause) < len(text) * 0.8 else None


def make_pairs(kind: str, corpus: str | Path, *, limit: int | None = None, min_lines: int = 3) -> list[tuple[str, str]]:
    """Deterministic source/target pairs built from real text (for demos and the README figure).

    * ``"speech-first-line"`` (TinyShakespeare ``input.txt``): source = a speech of at least
      ``min_lines`` lines (lines joined by spaces), target = its first line. A "headline" task
      whose answer is in the input: a small GPT learns to copy the opening, BERT's
      extractive summarizer must pick the right sentence.
    * ``"snippet-first-clause"`` (SST ``rt_snippets.txt``): source = a review snippet that
      has a clause boundary (comma, semicolon, colon or dash), target = its first clause
      (at least 3 words, under 80% of the snippet).

    Pairs keep the corpus order; ``limit`` keeps the first N.
    """
    pairs: list[tuple[str, str]] = []
    if kind == "speech-first-line":
        for _, lines in shakespeare_speeches(corpus):
            if len(lines) >= min_lines:
                pairs.append((" ".join(lines), lines[0]))
    elif kind == "snippet-first-clause":
        for line in read_text_file(corpus).splitlines():
            text = " ".join(line.split())
            clause = _first_clause(text) if text else None
            if clause:
                pairs.append((text, clause))
    else:
        raise ValueError(f"unknown pair kind {kind!r}; expected 'speech-first-line' or 'snippet-first-clause'")
    return pairs[:limit] if limit is not None else pairs


def shakespeare_dialogues(corpus: str | Path, *, turns: int = 4,
                          limit: int | None = None) -> list[list[dict[str, str]]]:
    """Dialogues of ``turns`` consecutive speeches between exactly two speakers, the first
    speaker as 'user' and the second as 'assistant' (speeches flattened to one line)."""
    speeches = shakespeare_speeches(corpus)
    out: list[list[dict[str, str]]] = []
    i = 0
    while i + turns <= len(speeches) and (limit is None or len(out) < limit):
        window = speeches[i:i + turns]
        a, b = window[0][0], window[1][0]
        if a != b and all(s == (a if j % 2 == 0 else b) for j, (s, _) in enumerate(window)):
            out.append([{"role": "user" if j % 2 == 0 else "assistant", "content": " ".join(lines)}
                        for j, (_, lines) in enumerate(window)])
            i += turns
        else:
            i += 1
    return out


def write_pairs(pairs: Sequence[tuple[str, str]], path: str | Path) -> Path:
    """Write pairs as JSONL (``{"source", "target"}``) or, for a .tsv path, TSV with a header."""
    p = Path(path)
    with p.open("w", encoding="utf-8") as f:
        if p.suffix.lower() == ".tsv":
            f.write("source\ttarget\n")
            for s, t in pairs:
                f.write(f"{' '.join(s.split())}\t{' '.join(t.split())}\n")
        else:
            for s, t in pairs:
                f.write(json.dumps({"source": s, "target": t}, ensure_ascii=False) + "\n")
    return p
