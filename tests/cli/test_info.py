"""``gptbert info``: exact parameter counts, sizes, FLOPs, checkpoints and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gptbert.cli import main
from gptbert.config import PRESETS, ModelConfig
from gptbert.flops import count_parameters_analytic


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["info", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_gpt2_and_bert_base_counts(capsys):
    code, out, _ = _run(capsys, "gpt2")
    assert code == 0 and "124,439,808" in out and "Kaplan" in out
    code, out, _ = _run(capsys, "bert-base")
    assert code == 0 and "109,482,240" in out


def test_json_fields(capsys):
    code, out, _ = _run(capsys, "gpt2", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["parameters"] == 124_439_808
    assert info["non_embedding_parameters"] == 85_056_000
    assert info["size_bytes"] == {"fp32": 4 * 124_439_808, "bf16": 2 * 124_439_808, "int8": 124_439_808}
    assert (info["n_layer"], info["n_head"], info["n_embd"], info["block_size"]) == (12, 12, 768, 1024)
    # Kaplan et al.: 2 N + 2 n_layer n_ctx n_embd; training 3x.
    forward = 2 * 85_056_000 + 2 * 12 * 1024 * 768
    assert info["flops_per_token"]["forward"] == forward
    assert info["flops_per_token"]["training"] == 3 * forward
    code, out, _ = _run(capsys, "gpt2", "--json", "--context", "128")
    assert json.loads(out)["flops_per_token"]["forward"] == 2 * 85_056_000 + 2 * 12 * 128 * 768


def test_info_does_not_import_torch_for_presets():
    code = (
        "import sys, io, contextlib\n"
        "from gptbert.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['info', 'bert-base'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


HEADS = {"bert": [None, "pretrain", "mlm", "classify", "tokens", "qa"], "gpt": [None, "lm", "classify", "tokens", "qa"],
         "hybrid": [None, "lm", "classify", "tokens", "qa"], "encdec": ["lm"]}


BIG = ("bert-large", "gpt2-medium", "gpt2-large", "gpt2-xl")


@pytest.mark.parametrize("name,head", [(n, h) for n, p in PRESETS.items() if p["family"] != "elmo"
                                       for h in (HEADS[p["family"]] if n not in BIG else [None])])
def test_analytic_count_equals_built_model(name, head):
    """The closed form matches the real model (meta device: shapes only)."""
    import torch

    from gptbert.models import build_model, count_parameters

    config = ModelConfig.from_name(name, head=head, num_labels=5)
    with torch.device("meta"):
        model = build_model(config)
    analytic = count_parameters_analytic(config)
    assert analytic.total == count_parameters(model)
    assert analytic.non_embedding == count_parameters(model, non_embedding=True)


@pytest.mark.parametrize("changes", [
    dict(tie_word_embeddings=False, head="lm"),
    dict(position="sinusoidal"),
    dict(bias=False),
    dict(norm="post"),
    dict(intermediate_size=100, type_vocab_size=3),
])
def test_analytic_count_variants(changes):
    import torch

    from gptbert.models import build_model, count_parameters

    for family in ("gpt", "bert"):
        if family == "bert" and changes.get("head") == "lm":
            changes = dict(changes, head="mlm")
        config = ModelConfig(family=family, n_layer=2, n_head=2, n_embd=16, block_size=32, vocab_size=50, **changes)
        with torch.device("meta"):
            model = build_model(config)
        assert count_parameters_analytic(config).total == count_parameters(model), (family, changes)


def test_elmo_preset_is_counted_by_building(capsys):
    pytest.importorskip("gptbert.models.elmo")
    code, out, _ = _run(capsys, "elmo-small", "--json")
    info = json.loads(out)
    assert code == 0 and info["counted"] == "built" and info["parameters"] > 0
    assert info["flops_per_token"]["forward"] == 2 * info["non_embedding_parameters"]


def test_all_table(capsys):
    code, out, _ = _run(capsys, "--all")
    assert code == 0
    for name in PRESETS:
        assert f"\n{name} " in out
    assert "124,439,808" in out and "109,482,240" in out


def test_checkpoint_paths(tmp_path, capsys):
    from gptbert.io.checkpoint import save_model
    from gptbert.io.hf import export_hf
    from gptbert.models import build_model

    config = ModelConfig(family="gpt", n_layer=2, n_head=2, n_embd=16, block_size=32, vocab_size=50, head="lm")
    model = build_model(config)
    save_model(model, tmp_path / "ours")
    export_hf(model, tmp_path / "hf")
    expected = count_parameters_analytic(config).total
    for d in ("ours", "hf"):
        code, out, _ = _run(capsys, str(tmp_path / d), "--json")
        info = json.loads(out)
        assert code == 0 and info["parameters"] == expected and info["head"] == "lm"
        assert info["checkpoint_bytes"] > 4 * expected * 0.9


def test_errors(tmp_path, capsys):
    code, _, err = _run(capsys, "no-such-model")
    assert code == 2 and "neither a preset nor a checkpoint directory" in err and "gpt2" in err
    code, _, err = _run(capsys, str(tmp_path))
    assert code == 2 and "not a gptbert or Hugging Face checkpoint" in err
    code, _, err = _run(capsys)
    assert code == 2 and "--all" in err
