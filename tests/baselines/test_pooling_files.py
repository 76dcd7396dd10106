"""read_pooling: the pooling a checkpoint was trained with, from its sentence-transformers files."""

from __future__ import annotations

import pytest

from gptbert.io.sentence_transformers import read_pooling
from tests.baselines._helpers import checkpoint_copy


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
