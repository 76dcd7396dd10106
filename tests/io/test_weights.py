"""safetensors with tied weights: stored once, restored tied; bad files give one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gptbert.io.weights import WeightsError, read_metadata, read_weights, write_weights


def test_tied_tensors_are_stored_once_and_restored(tmp_path: Path) -> None:
    emb = torch.randn(10, 4)
    state = {"wte.weight": emb, "lm_head.weight": emb, "ln.bias": torch.zeros(4), "view": emb[2:5]}
    path = write_weights(tmp_path / "m.safetensors", state, metadata={"step": 3})
    got, meta = read_weights(path)
    assert meta["step"] == "3" and meta["gptbert.tied"] == '{"lm_head.weight": "wte.weight"}'
    assert got["lm_head.weight"].data_ptr() == got["wte.weight"].data_ptr()
    assert torch.equal(got["view"], emb[2:5]) and torch.equal(got["wte.weight"], emb)
    assert read_metadata(path)["step"] == "3"


@pytest.mark.parametrize("content", [b"", b"not safetensors at all", b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":"])
def test_a_truncated_or_foreign_file_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="model.safetensors: not a readable safetensors file"):
        read_weights(path)
    with pytest.raises(WeightsError):
        read_metadata(path)


def test_truncated_real_file(tmp_path: Path) -> None:
    path = write_weights(tmp_path / "m.safetensors", {"w": torch.randn(64, 64)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated"):
        read_weights(path)
