"""Hugging Face import/export is exact (fp32, 1e-5): BERT and GPT-2 directories, both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gptbert.config import ModelConfig
from gptbert.io.checkpoint import load_any, read_labels, save_model
from gptbert.io.hf import export_hf, load_hf
from gptbert.io.layout import is_hf_directory, is_our_directory
from gptbert.models import build_model
from tests.io.test_checkpoint import _small, assert_truncated_weights_fail_in_one_line

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

TOL = dict(atol=1e-5, rtol=0.0)
B, T, V = 3, 11, 99
LENGTHS = [11, 7, 4]


def _batch(seed: int = 0, pad_left: bool = False) -> dict[str, torch.Tensor]:
    """Token ids in [1, V) (0 is the pad id), token types, and a padding mask."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(1, V, (B, T), generator=g)
    types = torch.randint(0, 2, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    for i, n in enumerate(LENGTHS):
        if pad_left:
            mask[i, T - n:] = 1
        else:
            mask[i, :n] = 1
    idx = idx * mask  # pad id 0
    return {"idx": idx, "types": types * mask, "mask": mask}


def _bert_config(**kw):
    return transformers.BertConfig(
        vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=64, type_vocab_size=2, pad_token_id=0, **kw,
    )


def _gpt2_config(**kw):
    return transformers.GPT2Config(
        vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_inner=37, n_positions=64,
        pad_token_id=0, bos_token_id=V - 1, eos_token_id=V - 1, **kw,
    )


def _save_hf(cls_name: str, config, directory: Path, seed: int = 0):
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(config).eval()
    # Non-trivial values everywhere (LayerNorms and biases start at 1 / 0).
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(directory)
    return model


def _nonpad(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x[mask.bool()]  # (N, ...)


# -- BERT ------------------------------------------------------------------------------------

BERT_CASES = [
    ("BertModel", None),
    ("BertForPreTraining", "pretrain"),
    ("BertForMaskedLM", "mlm"),
    ("BertForSequenceClassification", "classify"),
    ("BertForTokenClassification", "tokens"),
    ("BertForQuestionAnswering", "qa"),
]


def _bert_outputs_hf(model, batch):
    with torch.no_grad():
        out = model(input_ids=batch["idx"], token_type_ids=batch["types"], attention_mask=batch["mask"])
    name = type(model).__name__
    if name == "BertModel":
        return {"hidden": out.last_hidden_state, "pooled": out.pooler_output}
    if name == "BertForPreTraining":
        return {"tokens": out.prediction_logits, "pooled": out.seq_relationship_logits}
    if name == "BertForQuestionAnswering":
        return {"tokens": torch.stack([out.start_logits, out.end_logits], dim=-1)}
    if name == "BertForSequenceClassification":
        return {"pooled": out.logits}
    return {"tokens": out.logits}


def _bert_outputs_ours(model, batch):
    with torch.no_grad():
        out, _ = model(batch["idx"], token_type_ids=batch["types"], attention_mask=batch["mask"])
    head = model.config.head
    if head is None:
        return {"hidden": out, "pooled": model.pool(out)}
    if head == "pretrain":
        return {"tokens": out[0], "pooled": out[1]}
    if head == "classify":
        return {"pooled": out}
    return {"tokens": out}


def _assert_same(ours: dict, theirs: dict, mask: torch.Tensor) -> None:
    assert ours.keys() == theirs.keys()
    for key in ours:
        a, b = ours[key], theirs[key]
        if key in ("hidden", "tokens"):
            a, b = _nonpad(a, mask), _nonpad(b, mask)
        torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("cls_name,head", BERT_CASES)
def test_bert_import_matches_transformers(tmp_path, cls_name, head):
    labels = 3 if head in ("classify", "tokens") else 2  # Hugging Face QA heads need exactly 2
    hf = _save_hf(cls_name, _bert_config(num_labels=labels), tmp_path / "hf")
    assert is_hf_directory(tmp_path / "hf") and not is_our_directory(tmp_path / "hf")
    ours = load_any(tmp_path / "hf")
    assert ours.config.head == head and not ours.training
    assert ours.config.n_embd == 32 and ours.config.intermediate_size == 37
    if head in ("classify", "tokens"):
        assert ours.config.num_labels == 3
    for seed in (0, 1):
        batch = _batch(seed)
        _assert_same(_bert_outputs_ours(ours, batch), _bert_outputs_hf(hf, batch), batch["mask"])


@pytest.mark.parametrize("cls_name,head", BERT_CASES)
def test_bert_export_loads_in_transformers(tmp_path, cls_name, head):
    config = ModelConfig(family="bert", n_layer=2, n_head=4, n_embd=32, intermediate_size=37, block_size=64,
                         vocab_size=V, head=head, num_labels=3)
    torch.manual_seed(0)
    ours = build_model(config).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    export_hf(ours, tmp_path / "out", labels=["a", "b", "c"] if head in ("classify", "tokens") else None)
    hf, info = getattr(transformers, cls_name).from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    hf.eval()
    batch = _batch(3)
    _assert_same(_bert_outputs_ours(ours, batch), _bert_outputs_hf(hf, batch), batch["mask"])
    # ... and back: export -> import is the identity.
    again, theirs = load_hf(tmp_path / "out").state_dict(), ours.state_dict()
    dropped = {"pooler.dense.weight", "pooler.dense.bias"} if head in ("mlm", "tokens", "qa") else set()
    assert set(theirs) - set(again) == dropped and set(again) <= set(theirs)  # unused pooler is not exported
    for name, b in again.items():
        torch.testing.assert_close(theirs[name], b, atol=0, rtol=0, msg=name)
    if head in ("classify", "tokens"):
        assert read_labels(tmp_path / "out") == ["a", "b", "c"]


def test_bert_mlm_decoder_is_tied_after_import(tmp_path):
    _save_hf("BertForMaskedLM", _bert_config(), tmp_path / "hf")
    ours = load_any(tmp_path / "hf")
    assert ours.mlm.decoder.weight is ours.embeddings.wte.weight


def test_bert_pytorch_model_bin_without_prefix_or_pooler(tmp_path):
    """Old-style directory: pickled state dict, no 'bert.' prefix, a position_ids buffer, no pooler."""
    torch.manual_seed(0)
    hf = transformers.BertModel(_bert_config(), add_pooling_layer=False).eval()
    d = tmp_path / "hf"
    hf.config.save_pretrained(d)
    state = {k: v for k, v in hf.state_dict().items()}
    state["embeddings.position_ids"] = torch.arange(64)[None]
    torch.save(state, d / "pytorch_model.bin")
    ours = load_any(d)
    assert ours.pooler is None
    batch = _batch()
    with torch.no_grad():
        theirs = hf(input_ids=batch["idx"], token_type_ids=batch["types"], attention_mask=batch["mask"]).last_hidden_state
        mine, _ = ours(batch["idx"], token_type_ids=batch["types"], attention_mask=batch["mask"])
    torch.testing.assert_close(_nonpad(mine, batch["mask"]), _nonpad(theirs, batch["mask"]), **TOL)


def test_bert_pretraining_bin_with_tied_decoder_copies(tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertForPreTraining(_bert_config()).eval()
    d = tmp_path / "hf"
    hf.config.save_pretrained(d)
    state = dict(hf.state_dict())
    state["cls.predictions.decoder.weight"] = hf.bert.embeddings.word_embeddings.weight.detach().clone()
    state["cls.predictions.decoder.bias"] = hf.cls.predictions.bias.detach().clone()
    torch.save(state, d / "pytorch_model.bin")
    ours = load_any(d)
    batch = _batch()
    _assert_same(_bert_outputs_ours(ours, batch), _bert_outputs_hf(hf, batch), batch["mask"])


# -- GPT-2 -----------------------------------------------------------------------------------

GPT_CASES = [
    ("GPT2Model", None),
    ("GPT2LMHeadModel", "lm"),
    ("GPT2ForSequenceClassification", "classify"),
    ("GPT2ForTokenClassification", "tokens"),
]


def _gpt_outputs_hf(model, batch, position_ids=None):
    with torch.no_grad():
        out = model(input_ids=batch["idx"], attention_mask=batch["mask"], position_ids=position_ids)
    name = type(model).__name__
    if name == "GPT2Model":
        return {"hidden": out.last_hidden_state}
    if name == "GPT2ForSequenceClassification":
        return {"pooled": out.logits}
    return {"tokens": out.logits}


def _gpt_outputs_ours(model, batch, position_ids=None):
    with torch.no_grad():
        out, _ = model(batch["idx"], attention_mask=batch["mask"], position_ids=position_ids)
    head = model.config.head
    return {"hidden": out} if head is None else {"pooled": out} if head == "classify" else {"tokens": out}


@pytest.mark.parametrize("cls_name,head", GPT_CASES)
def test_gpt2_import_matches_transformers(tmp_path, cls_name, head):
    hf = _save_hf(cls_name, _gpt2_config(num_labels=3), tmp_path / "hf")
    ours = load_any(tmp_path / "hf")
    assert ours.config.head == head and ours.config.intermediate_size == 37
    for seed in (0, 1):
        batch = _batch(seed)
        _assert_same(_gpt_outputs_ours(ours, batch), _gpt_outputs_hf(hf, batch), batch["mask"])
    # Left padding with explicit position ids.
    batch = _batch(2, pad_left=True)
    pos = (batch["mask"].cumsum(1) - 1).clamp(min=0)
    _assert_same(_gpt_outputs_ours(ours, batch, pos), _gpt_outputs_hf(hf, batch, pos), batch["mask"])


def test_gpt2_lm_head_is_tied_and_conv1d_transposed(tmp_path):
    hf = _save_hf("GPT2LMHeadModel", _gpt2_config(), tmp_path / "hf")
    ours = load_any(tmp_path / "hf")
    assert ours.lm_head.weight is ours.embeddings.wte.weight
    # Conv1D stores (in, out); ours is (out, in): 32 -> 37 becomes (37, 32).
    assert ours.blocks[0].mlp.fc.weight.shape == (37, 32)
    torch.testing.assert_close(ours.blocks[0].mlp.fc.weight, hf.transformer.h[0].mlp.c_fc.weight.t())


def test_gpt2_question_answering(tmp_path):
    if not hasattr(transformers, "GPT2ForQuestionAnswering"):
        pytest.skip("this transformers has no GPT2ForQuestionAnswering")
    hf = _save_hf("GPT2ForQuestionAnswering", _gpt2_config(), tmp_path / "hf")
    ours = load_any(tmp_path / "hf")
    batch = _batch()
    with torch.no_grad():
        out = hf(input_ids=batch["idx"], attention_mask=batch["mask"])
        mine, _ = ours(batch["idx"], attention_mask=batch["mask"])
    theirs = torch.stack([out.start_logits, out.end_logits], dim=-1)
    torch.testing.assert_close(_nonpad(mine, batch["mask"]), _nonpad(theirs, batch["mask"]), **TOL)


def test_gpt2_pytorch_model_bin_with_attention_buffers(tmp_path):
    """Old GPT-2 files carry attn.bias / attn.masked_bias buffers and a tied lm_head copy."""
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(_gpt2_config()).eval()
    d = tmp_path / "hf"
    hf.config.save_pretrained(d)
    state = dict(hf.state_dict())
    state["lm_head.weight"] = hf.transformer.wte.weight.detach().clone()
    for i in range(2):
        state[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(64, 64)).view(1, 1, 64, 64)
        state[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    torch.save(state, d / "pytorch_model.bin")
    ours = load_any(d)
    batch = _batch()
    _assert_same(_gpt_outputs_ours(ours, batch), _gpt_outputs_hf(hf, batch), batch["mask"])


@pytest.mark.parametrize("cls_name,head", GPT_CASES)
def test_gpt2_export_loads_in_transformers(tmp_path, cls_name, head):
    config = ModelConfig(family="gpt", n_layer=2, n_head=4, n_embd=32, intermediate_size=37, block_size=64,
                         vocab_size=V, head=head, num_labels=3, pad_token_id=0)
    torch.manual_seed(0)
    ours = build_model(config).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    export_hf(ours, tmp_path / "out")
    stored = load_file(str(tmp_path / "out" / "model.safetensors"))
    prefix = "transformer." if head else ""
    assert stored[f"{prefix}h.0.mlp.c_fc.weight"].shape == (32, 37)  # Conv1D layout
    hf, info = getattr(transformers, cls_name).from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    hf.eval()
    batch = _batch(4)
    _assert_same(_gpt_outputs_ours(ours, batch), _gpt_outputs_hf(hf, batch), batch["mask"])


def test_export_refuses_what_transformers_cannot_represent(tmp_path):
    config = ModelConfig(family="gpt", n_layer=1, n_head=2, n_embd=8, block_size=16, vocab_size=V,
                         position="sinusoidal", norm="post")
    with pytest.raises(ValueError, match=r"position='sinusoidal'.*norm='post'"):
        export_hf(build_model(config), tmp_path / "x")
    assert not (tmp_path / "x").exists()


# -- Error messages --------------------------------------------------------------------------


def _tamper(directory: Path, change) -> None:
    path = directory / "model.safetensors"
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata={"format": "pt"})


def test_missing_tensor_is_named(tmp_path):
    _save_hf("BertModel", _bert_config(), tmp_path / "hf")
    _tamper(tmp_path / "hf", lambda s: s.pop("encoder.layer.1.attention.self.key.weight"))
    with pytest.raises(ValueError, match=r"missing tensor.*'encoder\.layer\.1\.attention\.self\.key\.weight' \[32, 32\]"):
        load_any(tmp_path / "hf")


def test_unexpected_tensor_is_named(tmp_path):
    _save_hf("GPT2LMHeadModel", _gpt2_config(), tmp_path / "hf")
    _tamper(tmp_path / "hf", lambda s: s.__setitem__("transformer.h.0.attn.rotary", torch.zeros(3)))
    with pytest.raises(ValueError, match=r"unexpected tensor.*'transformer\.h\.0\.attn\.rotary' \[3\]"):
        load_any(tmp_path / "hf")


def test_misshaped_tensor_is_named(tmp_path):
    _save_hf("BertForSequenceClassification", _bert_config(), tmp_path / "hf")
    _tamper(tmp_path / "hf", lambda s: s.__setitem__("bert.encoder.layer.0.intermediate.dense.weight",
                                                     torch.zeros(36, 32)))
    with pytest.raises(ValueError, match=r"'bert\.encoder\.layer\.0\.intermediate\.dense\.weight' has shape "
                                         r"\[36, 32\], expected \[37, 32\]"):
        load_any(tmp_path / "hf")


def test_truncated_hf_weights_are_one_clear_error(tmp_path):
    _save_hf("BertModel", _bert_config(), tmp_path / "hf")
    assert_truncated_weights_fail_in_one_line(tmp_path / "hf")


def test_unsupported_hf_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "architectures": ["T5Model"]}))
    with pytest.raises(ValueError, match="unsupported model_type 't5'"):
        load_any(tmp_path)


# -- Both formats, untied matrices, dtypes --------------------------------------------------


def test_save_refuses_to_overwrite_hf_directory(tmp_path):
    _save_hf("BertModel", _bert_config(), tmp_path / "hf")
    before = (tmp_path / "hf" / "config.json").read_text()
    with pytest.raises(FileExistsError, match="Hugging Face"):
        save_model(_small("lm"), tmp_path / "hf")
    assert (tmp_path / "hf" / "config.json").read_text() == before


@pytest.mark.parametrize("cls_name", ["BertForMaskedLM", "GPT2LMHeadModel"])
def test_untied_output_matrix_round_trips(tmp_path, cls_name):
    bert = cls_name.startswith("Bert")
    config = (_bert_config if bert else _gpt2_config)(tie_word_embeddings=False)
    hf = _save_hf(cls_name, config, tmp_path / "hf")
    ours = load_any(tmp_path / "hf")
    out = ours.mlm.decoder if bert else ours.lm_head
    assert not ours.config.tie_word_embeddings and out.weight is not ours.embeddings.wte.weight
    batch = _batch()
    outputs = (_bert_outputs_ours, _bert_outputs_hf) if bert else (_gpt_outputs_ours, _gpt_outputs_hf)
    _assert_same(outputs[0](ours, batch), outputs[1](hf, batch), batch["mask"])
    export_hf(ours, tmp_path / "out")
    again = getattr(transformers, cls_name).from_pretrained(tmp_path / "out").eval()
    _assert_same(outputs[0](ours, batch), outputs[1](again, batch), batch["mask"])


def test_load_hf_with_dtype(tmp_path):
    _save_hf("GPT2LMHeadModel", _gpt2_config(), tmp_path / "hf")
    model = load_any(tmp_path / "hf", dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
