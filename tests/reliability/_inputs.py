"""The input files every hostile-input case finds in its folder (small; written per case, so a
case that wrongly writes over one cannot change another case's input)."""

from __future__ import annotations

import json
import random
from pathlib import Path

_rng = random.Random(15)
GARBAGE = bytes(_rng.randrange(256) for _ in range(4096))
"""Binary noise: NUL bytes and invalid UTF-8 throughout."""

_POS = ["a wonderful , moving film", "great acting and a fine story", "i loved every minute of it",
        "funny , warm and clever", "the best film this year"]
_NEG = ["a dull , lifeless film", "bad acting and a weak story", "i hated every minute of it",
        "boring , cold and silly", "the worst film this year"]


def _tsv(rows: list[tuple[str, int]]) -> str:
    return "text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows)


SQUAD = {"version": "1.1", "data": [
    {"title": f"Article{k}", "paragraphs": [{"context": f"The river {k} flows north. It is long and cold.",
                                              "qas": [{"id": f"q{k}", "question": f"Where does river {k} flow?",
                                                       "answers": [{"text": "north", "answer_start":
                                                                    len(f"The river {k} flows ")}]}]}]}
    for k in range(4)]}

FILES: dict[str, str | bytes] = {
    "good.tsv": _tsv([(t, 1) for t in _POS] + [(t, 0) for t in _NEG]),
    "oneclass.tsv": _tsv([(t, 1) for t in _POS + _POS]),
    "good.txt": "\n".join(_POS + _NEG) + "\n",
    "snippets.txt": "".join(f"{t} , and {u} as well .\n" for t, u in zip(_POS, _NEG)),
    "texts.txt": "a fine film\nthe worst film\n",
    "garbage.bin": GARBAGE,
    "garbage.txt": GARBAGE,
    "garbage.tsv": GARBAGE,
    "garbage.json": GARBAGE,
    "nul.txt": "a fine film\n\x00\x00\x00 bad\n",
    "latin1.txt": "caf\xe9 cr\xe8me, a fine film\n".encode("latin-1"),
    "empty.txt": "",
    "empty.tsv": "",
    "blank.txt": "\n\n   \n",
    "headeronly.tsv": "text\tlabel\n",
    "nolabel.tsv": "text\n" + "".join(f"{t}\n" for t in _POS),
    "bad.jsonl": '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c", "label": \n',
    "list.json": "[1, 2, 3]\n",
    "squad.json": json.dumps(SQUAD),
    "notsquad.json": json.dumps({"data": [{"title": "x"}]}),
    "results.json": json.dumps({"hello": "world"}),
    "existing.jsonl": '{"keep": "this line"}\n',
    "existing.json": '{"keep": true}\n',
    "existing.csv": "keep,this\n1,2\n",
    "existing.tsv": "keep\tthis\n",
    "existing.npy": b"\x93NUMPY keep me",
    "existing.onnx": b"keep me",
    "key.txt": "a-long-enough-secret-key-for-tests\n",
    "outdir/keep.txt": "keep me\n",
    "adir/inner.txt": "a text\n",
}


def write_inputs(root: Path) -> None:
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
