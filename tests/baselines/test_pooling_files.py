"""read_pooling: the pooling a checkpoint was trained with, from its sentence-transformers files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gptbert.io.sentence_transformers import POOLING_DIR, read_pooling

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


def test_minilm_is_mean_pooled_normalised_256_tokens(minilm_dir):
    spec = read_pooling(minilm_dir)
    assert spec is not None
    assert (spec.pooling, spec.normalize, spec.max_len) == ("mean", True, 256)
    assert spec.source.endswith("1_Pooling/config.json")


def test_changed_pooling_file_and_plain_checkpoints(minilm_dir, tmp_path):
    cls_dir = checkpoint_copy(minilm_dir, tmp_path / "cls",
                              pooling={"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    assert read_pooling(cls_dir).pooling == "cls"
    assert read_pooling(checkpoint_copy(minilm_dir, tmp_path / "plain", sentence_transformers=False)) is None
    both = checkpoint_copy(minilm_dir, tmp_path / "both", pooling={"pooling_mode_max_tokens": True})
    with pytest.raises(ValueError, match="exactly one of"):
        read_pooling(both)
