"""ModelConfig: validation, presets, serialisation, and no torch at import time."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gptbert.config import PRESETS, ModelConfig, preset_names


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_embd=30, n_head=4), r"n_embd \(30\) must be divisible by n_head \(4\)"),
    (dict(n_layer=0), r"n_layer: expected a positive integer, got 0"),
    (dict(n_head=-2), r"n_head: expected a positive integer, got -2"),
    (dict(vocab_size=0), r"vocab_size: expected a positive integer"),
    (dict(block_size=2.5), r"block_size: expected a positive integer"),
    (dict(family="rnn"), r"family: expected one of 'bert', 'gpt', 'elmo', 'hybrid', 'encdec', got 'rnn'"),
    (dict(dropout=1.0), r"dropout: expected a value in \[0, 1\)"),
    (dict(head="summarise"), r"head: expected one of"),
    (dict(head="classify", num_labels=0), r"num_labels: expected >= 1"),
    (dict(position="rotary"), r"position: expected 'learned' or 'sinusoidal'"),
])
def test_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown preset 'gpt5'; known presets: .*gpt2"):
        ModelConfig.from_name("gpt5")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_loads_and_round_trips(name, tmp_path):
    config = ModelConfig.from_name(name)
    assert config.name == name and config.family == PRESETS[name]["family"]
    assert ModelConfig.from_dict(config.to_dict()) == config
    config.save(tmp_path / "c.json")
    assert ModelConfig.load(tmp_path / "c.json") == config


def test_family_defaults():
    bert, gpt = ModelConfig.from_name("bert-base"), ModelConfig.from_name("gpt2")
    assert (bert.norm, bert.activation, bert.layer_norm_eps, bert.type_vocab_size, bert.add_pooler) == (
        "post", "gelu", 1e-12, 2, True)
    assert (gpt.norm, gpt.activation, gpt.layer_norm_eps, gpt.type_vocab_size, gpt.add_pooler) == (
        "pre", "gelu_tanh", 1e-5, 0, False)
    assert gpt.intermediate_size == 4 * 768 and gpt.head_size == 64 and gpt.causal and not bert.causal
    assert set(preset_names("elmo")) == {"elmo-small", "elmo-medium"}


def test_overrides_and_replace():
    config = ModelConfig.from_name("gpt-nano", n_layer=1, head="lm")
    assert config.n_layer == 1 and config.head == "lm"
    wider = config.replace(n_embd=96)
    assert wider.n_embd == 96 and wider.head_size == 32 and config.n_embd == 48


def test_from_dict_rejects_unknown_fields(tmp_path):
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['n_ctx'\]"):
        ModelConfig.from_dict({"n_ctx": 5})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ModelConfig.load(tmp_path / "bad.json")


def _assert_no_torch(code: str) -> None:
    check = code + "\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    subprocess.run([sys.executable, "-c", check], check=True, capture_output=True)


def test_config_import_does_not_import_torch():
    _assert_no_torch("import gptbert.config, gptbert.flops")


def test_cli_help_does_not_import_torch():
    _assert_no_torch(
        "import contextlib, io\n"
        "from gptbert.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0\n"
    )
