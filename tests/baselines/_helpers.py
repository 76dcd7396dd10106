"""Helpers of the baseline tests: cheap checkpoint copies, pickle-file checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gptbert.io.sentence_transformers import POOLING_DIR

ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", POOLING_DIR)


def checkpoint_copy(minilm_dir: Path, out: Path, *, pooling: dict | None = None, sentence_transformers: bool = True
                    ) -> Path:
    """A cheap copy of the MiniLM directory: big files linked, sentence-transformers files copied
    (with another pooling config) or left out."""
    out.mkdir()
    for p in minilm_dir.iterdir():
        if p.name in ST_FILES:
            if sentence_transformers:
                (shutil.copytree if p.is_dir() else shutil.copy)(p, out / p.name)
        else:
            (out / p.name).symlink_to(p)
    if pooling is not None:
        path = out / POOLING_DIR / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **pooling}))
    return out


def pickle_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
