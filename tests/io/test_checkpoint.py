"""Our checkpoint format: save / load round trips, tied weights, dtypes, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from gptbert.config import ModelConfig
from gptbert.io.checkpoint import load_any, load_model, read_labels, save_model
from gptbert.io.hf import export_hf
from gptbert.io.layout import is_hf_directory, is_our_directory
from gptbert.io.weights import WeightsError
from gptbert.models import build_model

V = 99


# -- Our format ------------------------------------------------------------------------------


def _small(head: str | None, family: str = "gpt") -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(family=family, n_layer=2, n_head=2, n_embd=16, block_size=32, vocab_size=V, head=head)
    return build_model(config).eval()


@pytest.mark.parametrize("family,head", [("gpt", "lm"), ("bert", "pretrain"), ("bert", "classify"), ("gpt", None)])
def test_save_load_round_trip(tmp_path, family, head):
    model = _small(head, family)
    save_model(model, tmp_path / "ck", extra_files={"labels.json": ["neg", "pos"], "notes.txt": "hello"})
    assert is_our_directory(tmp_path / "ck") and not is_hf_directory(tmp_path / "ck")
    loaded = load_any(tmp_path / "ck")
    assert loaded.config == model.config
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)
    assert (tmp_path / "ck" / "notes.txt").read_text() == "hello"
    assert read_labels(tmp_path / "ck") == ["neg", "pos"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_tied_weights_stored_once_and_stay_tied(tmp_path):
    model = _small("lm")
    save_model(model, tmp_path / "ck")
    stored = load_file(str(tmp_path / "ck" / "model.safetensors"))
    assert ("embeddings.wte.weight" in stored) != ("lm_head.weight" in stored)
    loaded = load_model(tmp_path / "ck")
    assert loaded.lm_head.weight is loaded.embeddings.wte.weight


def test_dtype_is_kept_or_converted(tmp_path):
    model = _small("lm").to(torch.bfloat16)
    save_model(model, tmp_path / "ck")
    assert load_model(tmp_path / "ck").embeddings.wte.weight.dtype == torch.bfloat16
    assert load_model(tmp_path / "ck", dtype=torch.float32).embeddings.wte.weight.dtype == torch.float32


def test_save_into_existing_directory_keeps_other_files(tmp_path):
    d = tmp_path / "ck"
    d.mkdir()
    (d / "mine.txt").write_text("keep me")
    save_model(_small("lm"), d)
    save_model(_small(None), d)  # overwrite our own checkpoint
    assert (d / "mine.txt").read_text() == "keep me"
    assert load_model(d).config.head is None
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "mine.txt", "model.safetensors"]


def test_load_model_names_mismatched_tensor(tmp_path):
    save_model(_small("lm"), tmp_path / "ck")
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    config["n_embd"] = 32
    (tmp_path / "ck" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"tensor 'embeddings\.wte\.weight' has shape \[99, 16\], the config expects \[99, 32\]"):
        load_model(tmp_path / "ck")


def assert_truncated_weights_fail_in_one_line(directory) -> None:
    """Cut ``directory``'s model.safetensors in half: loading it is one WeightsError line, not a SafetensorError."""
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(WeightsError, match=r"model\.safetensors: not a readable safetensors file .*truncated") as info:
        load_any(directory)
    assert "\n" not in str(info.value)


def test_truncated_weights_are_one_clear_error(tmp_path):
    save_model(_small("lm"), tmp_path / "ck")
    assert_truncated_weights_fail_in_one_line(tmp_path / "ck")


def test_elmo_round_trip(tmp_path):
    pytest.importorskip("gptbert.models.elmo")
    torch.manual_seed(0)
    config = ModelConfig(family="elmo", n_layer=2, n_head=1, n_embd=16, intermediate_size=24, block_size=16,
                         vocab_size=V, head="lm", char_filters=((1, 4), (2, 8)))
    model = build_model(config).eval()
    save_model(model, tmp_path / "elmo")
    loaded = load_any(tmp_path / "elmo")
    assert loaded.config == config
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)
    with pytest.raises(ValueError, match="'bert' and 'gpt' families"):
        export_hf(model, tmp_path / "hf")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="not a gptbert or Hugging Face checkpoint"):
        load_any(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_any(tmp_path / "nope")
