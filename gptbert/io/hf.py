"""Hugging Face checkpoints: exact import and export of BERT and GPT-2 directories.

Hugging Face directories of the BERT family (``model_type`` "bert") and the GPT-2 family
("gpt2") are translated tensor by tensor, with no fuzzy matching: a missing, unexpected or
mis-shaped tensor is an error that names it. This module is the only place in gptbert that
knows Hugging Face parameter and configuration names:

* configuration: :func:`config_from_hf` (an HF ``config.json`` -> ``ModelConfig``), and back
  for export;
* the tensor layout: one :class:`_Rule` per tensor of our model, saying which HF tensors it is
  made of (:func:`_layout`);
* :func:`load_hf` / :func:`export_hf`, and the header-only readers :func:`read_hf_config` and
  :func:`read_hf_labels` used by :mod:`gptbert.io.checkpoint`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gptbert.config import ModelConfig
from gptbert.io.files import ExtraFile, content_writer, read_json_object, write_files
from gptbert.io.layout import CONFIG_FILE, WEIGHTS_FILE, is_our_directory
from gptbert.io.weights import float_dtype, load_state, read_tensor_names, read_weights
from gptbert.models import build_model, config_of

__all__ = ["config_from_hf", "export_hf", "load_hf", "read_hf_config", "read_hf_labels"]

# ---------------------------------------------------------------------------
# Hugging Face: configuration
# ---------------------------------------------------------------------------

_BERT_ARCHS: dict[str, str | None] = {
    "BertModel": None,
    "BertForPreTraining": "pretrain",
    "BertForMaskedLM": "mlm",
    "BertForSequenceClassification": "classify",
    "BertForTokenClassification": "tokens",
    "BertForQuestionAnswering": "qa",
}
_GPT2_ARCHS: dict[str, str | None] = {
    "GPT2Model": None,
    "GPT2LMHeadModel": "lm",
    "GPT2ForSequenceClassification": "classify",
    "GPT2ForTokenClassification": "tokens",
    "GPT2ForQuestionAnswering": "qa",
}
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "relu": "relu"}
_ACTIVATIONS_OUT = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}
_PREFIX = {"bert": "bert.", "gpt": "transformer."}


def _hf_family(hf: dict[str, Any], where: str) -> str:
    model_type = hf.get("model_type")
    archs = hf.get("architectures") or []
    if model_type == "bert" or (model_type is None and any(a in _BERT_ARCHS for a in archs)):
        return "bert"
    if model_type == "gpt2" or (model_type is None and any(a in _GPT2_ARCHS for a in archs)):
        return "gpt"
    raise ValueError(f"{where}: unsupported model_type {model_type!r} (architectures {archs}); supported: 'bert', 'gpt2'")


def _infer_head(family: str, keys: set[str]) -> str | None:
    """The head implied by the head tensors present (checkpoints without 'architectures')."""
    if family == "bert":
        if "cls.seq_relationship.weight" in keys:
            return "pretrain"
        if "cls.predictions.bias" in keys:
            return "mlm"
        if "qa_outputs.weight" in keys:
            return "qa"
        if "classifier.weight" in keys:
            return "classify" if "pooler.dense.weight" in keys else "tokens"
        return None
    if "score.weight" in keys:
        return "classify"
    if "classifier.weight" in keys:
        return "tokens"
    if "qa_outputs.weight" in keys:
        return "qa"
    if "lm_head.weight" in keys:
        return "lm"
    return None


def config_from_hf(hf: dict[str, Any], keys: Iterable[str] | None = None, *, name: str = "hf") -> ModelConfig:
    """Translate a Hugging Face ``config.json`` (as a dict) into a ``ModelConfig``.

    ``keys`` are the checkpoint's tensor names (prefixes stripped); they decide
    whether a BERT pooler exists and, without 'architectures', which head.
    """
    family = _hf_family(hf, name)
    key_set = set(keys) if keys is not None else None
    archs = hf.get("architectures") or []
    table = _BERT_ARCHS if family == "bert" else _GPT2_ARCHS
    known = [a for a in archs if a in table]
    if archs and not known:
        raise ValueError(f"{name}: unsupported architecture(s) {archs}; supported: {', '.join(table)}")
    if known:
        head = table[known[0]]
    else:
        head = _infer_head(family, key_set or set())

    def get(key: str, default: Any = None) -> Any:
        value = hf.get(key)
        return default if value is None else value

    act_key = "hidden_act" if family == "bert" else "activation_function"
    act = get(act_key, "gelu" if family == "bert" else "gelu_new")
    if act not in _ACTIVATIONS:
        raise ValueError(f"{name}: unsupported {act_key} {act!r}; supported: {', '.join(_ACTIVATIONS)}")
    id2label = hf.get("id2label")
    num_labels = len(id2label) if isinstance(id2label, dict) and id2label else int(get("num_labels", 2))
    vocab_size = int(hf["vocab_size"])
    pad = hf.get("pad_token_id")
    if not isinstance(pad, int):
        eos = hf.get("eos_token_id")
        pad = eos if isinstance(eos, int) and 0 <= eos < vocab_size else 0

    if family == "bert":
        if get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{name}: position_embedding_type {hf['position_embedding_type']!r} is not supported")
        if hf.get("is_decoder") or hf.get("add_cross_attention"):
            raise ValueError(f"{name}: BERT decoders / cross-attention are not supported")
        if hf.get("pruned_heads"):
            raise ValueError(f"{name}: checkpoints with pruned heads are not supported")
        has_pooler = "pooler.dense.weight" in key_set if key_set is not None else head in (None, "classify", "pretrain")
        kwargs: dict[str, Any] = dict(
            family="bert",
            n_layer=hf["num_hidden_layers"],
            n_head=hf["num_attention_heads"],
            n_embd=hf["hidden_size"],
            intermediate_size=hf.get("intermediate_size"),
            block_size=get("max_position_embeddings", 512),
            type_vocab_size=get("type_vocab_size", 2),
            layer_norm_eps=float(get("layer_norm_eps", 1e-12)),
            dropout=float(get("hidden_dropout_prob", 0.1)),
            classifier_dropout=hf.get("classifier_dropout"),
            add_pooler=has_pooler or head in ("classify", "pretrain"),
        )
    else:
        if hf.get("scale_attn_by_inverse_layer_idx") or hf.get("scale_attn_weights") is False:
            raise ValueError(f"{name}: non-standard GPT-2 attention scaling is not supported")
        if hf.get("add_cross_attention"):
            raise ValueError(f"{name}: cross-attention is not supported")
        kwargs = dict(
            family="gpt",
            n_layer=hf["n_layer"],
            n_head=hf["n_head"],
            n_embd=hf["n_embd"],
            intermediate_size=hf.get("n_inner"),
            block_size=get("n_positions", 1024),
            layer_norm_eps=float(get("layer_norm_epsilon", 1e-5)),
            dropout=float(get("resid_pdrop", 0.1)),
            classifier_dropout=hf.get("classifier_dropout"),
        )
    return ModelConfig(
        name=str(hf.get("_name_or_path") or name),
        vocab_size=vocab_size,
        activation=_ACTIVATIONS[act],
        tie_word_embeddings=bool(get("tie_word_embeddings", True)),
        pad_token_id=pad,
        initializer_range=float(get("initializer_range", 0.02)),
        head=head,
        num_labels=num_labels,
        **kwargs,
    )


# ---------------------------------------------------------------------------
# Hugging Face: tensor layout
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """Our tensor ``ours`` is made of Hugging Face tensors ``theirs``.

    kind 'copy': the same tensor; 'cat': ours is theirs concatenated on dim 0
    (q, k, v -> qkv); 'conv1d': GPT-2's Conv1D stores weights (in, out), ours are (out, in).
    """

    ours: str
    theirs: tuple[str, ...]
    kind: str = "copy"


def _linear(ours: str, theirs: str, kind: str = "copy") -> list[_Rule]:
    return [_Rule(f"{ours}.weight", (f"{theirs}.weight",), kind), _Rule(f"{ours}.bias", (f"{theirs}.bias",))]


def _norm(ours: str, theirs: str) -> list[_Rule]:
    return [_Rule(f"{ours}.weight", (f"{theirs}.weight",)), _Rule(f"{ours}.bias", (f"{theirs}.bias",))]


def _layout(config: ModelConfig) -> list[_Rule]:
    """Every tensor of our model (tied aliases excluded) and where it lives in a Hugging Face checkpoint.

    Backbone names are given without the 'bert.' / 'transformer.' prefix.
    """
    rules: list[_Rule] = []
    tied = config.tie_word_embeddings
    if config.family == "bert":
        rules.append(_Rule("embeddings.wte.weight", ("embeddings.word_embeddings.weight",)))
        rules.append(_Rule("embeddings.wpe.weight", ("embeddings.position_embeddings.weight",)))
        if config.type_vocab_size:
            rules.append(_Rule("embeddings.wtt.weight", ("embeddings.token_type_embeddings.weight",)))
        rules += _norm("embeddings.ln", "embeddings.LayerNorm")
        for i in range(config.n_layer):
            ours, hf = f"blocks.{i}", f"encoder.layer.{i}"
            for part in ("weight", "bias"):
                qkv = tuple(f"{hf}.attention.self.{p}.{part}" for p in ("query", "key", "value"))
                rules.append(_Rule(f"{ours}.attn.qkv.{part}", qkv, "cat"))
            rules += _linear(f"{ours}.attn.proj", f"{hf}.attention.output.dense")
            rules += _norm(f"{ours}.ln_1", f"{hf}.attention.output.LayerNorm")
            rules += _linear(f"{ours}.mlp.fc", f"{hf}.intermediate.dense")
            rules += _linear(f"{ours}.mlp.proj", f"{hf}.output.dense")
            rules += _norm(f"{ours}.ln_2", f"{hf}.output.LayerNorm")
        if config.add_pooler:
            rules += _linear("pooler.dense", "pooler.dense")
        if config.head in ("pretrain", "mlm"):
            rules += _linear("mlm.dense", "cls.predictions.transform.dense")
            rules += _norm("mlm.ln", "cls.predictions.transform.LayerNorm")
            rules.append(_Rule("mlm.decoder.bias", ("cls.predictions.bias",)))
            if not tied:
                rules.append(_Rule("mlm.decoder.weight", ("cls.predictions.decoder.weight",)))
        if config.head == "pretrain":
            rules += _linear("nsp", "cls.seq_relationship")
        if config.head in ("classify", "tokens"):
            rules += _linear("task.out.out", "classifier")
        if config.head == "qa":
            rules += _linear("task.out.out", "qa_outputs")
        return rules
    if config.family != "gpt":
        raise ValueError(f"Hugging Face conversion supports the 'bert' and 'gpt' families, not {config.family!r}")
    rules.append(_Rule("embeddings.wte.weight", ("wte.weight",)))
    rules.append(_Rule("embeddings.wpe.weight", ("wpe.weight",)))
    for i in range(config.n_layer):
        ours, hf = f"blocks.{i}", f"h.{i}"
        rules += _norm(f"{ours}.ln_1", f"{hf}.ln_1")
        rules += _linear(f"{ours}.attn.qkv", f"{hf}.attn.c_attn", "conv1d")
        rules += _linear(f"{ours}.attn.proj", f"{hf}.attn.c_proj", "conv1d")
        rules += _norm(f"{ours}.ln_2", f"{hf}.ln_2")
        rules += _linear(f"{ours}.mlp.fc", f"{hf}.mlp.c_fc", "conv1d")
        rules += _linear(f"{ours}.mlp.proj", f"{hf}.mlp.c_proj", "conv1d")
    rules += _norm("ln_f", "ln_f")
    if config.head == "lm" and not tied:
        rules.append(_Rule("lm_head.weight", ("lm_head.weight",)))
    if config.head == "classify":
        rules.append(_Rule("task.out.out.weight", ("score.weight",)))
    if config.head == "tokens":
        rules += _linear("task.out.out", "classifier")
    if config.head == "qa":
        rules += _linear("task.out.out", "qa_outputs")
    return rules


def _is_backbone(hf_name: str) -> bool:
    return not hf_name.startswith(("cls.", "classifier.", "qa_outputs.", "score.", "lm_head."))


def _ignorable(config: ModelConfig, hf_name: str) -> bool:
    """Buffers and tied duplicates that Hugging Face checkpoints may carry."""
    if hf_name.endswith(("embeddings.position_ids", ".attn.bias", ".attn.masked_bias")):
        return True
    if config.tie_word_embeddings and hf_name == "cls.predictions.decoder.bias":  # tied to cls.predictions.bias
        return True
    if config.tie_word_embeddings and hf_name in ("cls.predictions.decoder.weight", "lm_head.weight"):
        return True
    return False


def _normalise_names(state: dict[str, Tensor], family: str) -> dict[str, Tensor]:
    """Strip the backbone prefix and rename old LayerNorm gamma/beta."""
    prefix = _PREFIX[family]
    out: dict[str, Tensor] = {}
    for name, t in state.items():
        if name.startswith(prefix):
            name = name[len(prefix):]
        if name.endswith(".gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith(".beta"):
            name = name[: -len("beta")] + "bias"
        out[name] = t
    return out


def _read_hf_weights(directory: Path) -> tuple[dict[str, Tensor], str]:
    """All tensors of a Hugging Face directory (safetensors, sharded or not, else pytorch_model.bin)."""
    def load_bin(path: Path) -> dict[str, Tensor]:
        import pickle

        from gptbert.io.weights import WeightsError

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise WeightsError(f"{path}: holds code or objects other than tensors, so it was not loaded "
                               "(a pickle file can run code when loaded); convert the checkpoint to "
                               "model.safetensors where it came from and load that") from None
        except (RuntimeError, EOFError, OSError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise WeightsError(f"{path}: not a readable PyTorch weights file ({reason})") from None
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
        return state

    for single, index, loader in (
        (WEIGHTS_FILE, "model.safetensors.index.json", lambda p: read_weights(p)[0]),
        ("pytorch_model.bin", "pytorch_model.bin.index.json", load_bin),
    ):
        if (directory / single).is_file():
            return loader(directory / single), str(directory / single)
        if (directory / index).is_file():
            weight_map = read_json_object(directory / index).get("weight_map", {})
            state: dict[str, Tensor] = {}
            for shard in sorted(set(weight_map.values())):
                state.update(loader(directory / shard))
            return state, str(directory / index)
    raise FileNotFoundError(f"{directory}: no {WEIGHTS_FILE} or pytorch_model.bin (sharded or not)")


def _hf_tensor_names(directory: Path) -> list[str]:
    """Tensor names of a Hugging Face directory, reading only safetensors headers where possible."""
    if (directory / WEIGHTS_FILE).is_file():
        return read_tensor_names(directory / WEIGHTS_FILE)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (directory / index).is_file():
            return list(read_json_object(directory / index).get("weight_map", {}))
    return list(_read_hf_weights(directory)[0])


def read_hf_config(directory: str | os.PathLike) -> ModelConfig:
    """The ``ModelConfig`` of a Hugging Face directory, from its config.json and tensor names (no weights)."""
    directory = Path(directory)
    hf = read_json_object(directory / CONFIG_FILE)
    prefix = _PREFIX[_hf_family(hf, str(directory))]
    names = [n[len(prefix):] if n.startswith(prefix) else n for n in _hf_tensor_names(directory)]
    return config_from_hf(hf, names, name=directory.name)


def read_hf_labels(directory: str | os.PathLike) -> list[str] | None:
    """Label names from a Hugging Face config.json's ``id2label`` (None when it has none)."""
    id2label = read_json_object(Path(directory) / CONFIG_FILE).get("id2label")
    if isinstance(id2label, dict) and id2label:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    return None


def _convert_in(rule: _Rule, tensors: list[Tensor]) -> Tensor:
    if rule.kind == "cat":
        return torch.cat(tensors, dim=0)
    if rule.kind == "conv1d" and tensors[0].dim() == 2:
        return tensors[0].t().contiguous()
    return tensors[0]


def _expected_hf_shape(rule: _Rule, shape: torch.Size) -> tuple[int, ...]:
    if rule.kind == "cat":
        return (shape[0] // len(rule.theirs), *shape[1:])
    if rule.kind == "conv1d" and len(shape) == 2:
        return (shape[1], shape[0])
    return tuple(shape)


def load_hf(directory: str | os.PathLike, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> nn.Module:
    """Load a Hugging Face BERT or GPT-2 directory as a gptbert model (eval mode).

    ``dtype`` None keeps the checkpoint's floating-point dtype.
    """
    directory = Path(directory)
    hf = read_json_object(directory / CONFIG_FILE)
    family = _hf_family(hf, str(directory))
    raw, source = _read_hf_weights(directory)
    state = _normalise_names(raw, family)
    prefixed = any(k.startswith(_PREFIX[family]) for k in raw)

    def shown(name: str) -> str:  # the name as it appears in the checkpoint
        return (_PREFIX[family] if prefixed and _is_backbone(name) else "") + name

    config = config_from_hf(hf, state.keys(), name=directory.name)
    if not config.tie_word_embeddings and "cls.predictions.decoder.bias" in state:
        # Untied, the decoder's own bias is the one applied (older files hold the same values twice).
        state["cls.predictions.bias"] = state.pop("cls.predictions.decoder.bias")
    model = build_model(config)
    expected = model.state_dict()
    ours: dict[str, Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    for rule in _layout(config):
        target_shape = expected[rule.ours].shape
        want = _expected_hf_shape(rule, target_shape)
        parts = []
        for name in rule.theirs:
            if name not in state:
                missing.append(f"{shown(name)!r} {list(want)}")
                continue
            t = state[name]
            used.add(name)
            if tuple(t.shape) != want:
                raise ValueError(
                    f"{source}: tensor {shown(name)!r} has shape {list(t.shape)}, expected {list(want)} "
                    f"for the config in {directory / CONFIG_FILE}"
                )
            parts.append(t)
        if len(parts) == len(rule.theirs):
            ours[rule.ours] = _convert_in(rule, parts)
    if missing:
        raise ValueError(f"{source}: missing tensor(s) " + ", ".join(repr(m) for m in missing))
    unexpected = [n for n in state if n not in used and not _ignorable(config, n)]
    if unexpected:
        raise ValueError(
            f"{source}: unexpected tensor(s) for a {config.family} model with head {config.head!r}: "
            + ", ".join(f"{shown(n)!r} {list(state[n].shape)}" for n in unexpected)
        )
    # Tied aliases (e.g. the LM decoder) take the tensor they share.
    for name, t in expected.items():
        if name not in ours:
            for other, u in expected.items():
                if other in ours and u.data_ptr() == t.data_ptr() and u.shape == t.shape:
                    ours[name] = ours[other]
                    break
    return load_state(model, ours, source, device=device, dtype=dtype)


# ---------------------------------------------------------------------------
# Hugging Face: export
# ---------------------------------------------------------------------------


def _hf_config(config: ModelConfig, arch: str, dtype: torch.dtype, labels: list[str] | None) -> dict[str, Any]:
    dtype_name = str(dtype).removeprefix("torch.")
    out: dict[str, Any]
    if config.family == "bert":
        out = {
            "architectures": [arch],
            "model_type": "bert",
            "vocab_size": config.vocab_size,
            "hidden_size": config.n_embd,
            "num_hidden_layers": config.n_layer,
            "num_attention_heads": config.n_head,
            "intermediate_size": config.intermediate_size,
            "hidden_act": _ACTIVATIONS_OUT[config.activation or "gelu"],
            "hidden_dropout_prob": config.dropout,
            "attention_probs_dropout_prob": config.dropout,
            "max_position_embeddings": config.block_size,
            "type_vocab_size": config.type_vocab_size,
            "initializer_range": config.initializer_range,
            "layer_norm_eps": config.layer_norm_eps,
            "pad_token_id": config.pad_token_id,
            "position_embedding_type": "absolute",
            "classifier_dropout": config.classifier_dropout,
        }
    else:
        special = config.vocab_size - 1 if config.vocab_size == 50257 else None
        out = {
            "architectures": [arch],
            "model_type": "gpt2",
            "vocab_size": config.vocab_size,
            "n_embd": config.n_embd,
            "n_layer": config.n_layer,
            "n_head": config.n_head,
            "n_positions": config.block_size,
            "n_inner": config.intermediate_size,
            "activation_function": _ACTIVATIONS_OUT[config.activation or "gelu_tanh"],
            "resid_pdrop": config.dropout,
            "embd_pdrop": config.dropout,
            "attn_pdrop": config.dropout,
            "layer_norm_epsilon": config.layer_norm_eps,
            "initializer_range": config.initializer_range,
            "pad_token_id": config.pad_token_id,
            "bos_token_id": special,
            "eos_token_id": special,
            "classifier_dropout": config.classifier_dropout,
        }
    out["tie_word_embeddings"] = config.tie_word_embeddings
    out["dtype"] = dtype_name
    if config.head in ("classify", "tokens"):
        names = labels or [f"LABEL_{i}" for i in range(config.num_labels)]
        if len(names) != config.num_labels:
            raise ValueError(f"{len(names)} label names for a head with {config.num_labels} labels")
        out["id2label"] = {str(i): n for i, n in enumerate(names)}
        out["label2id"] = {n: i for i, n in enumerate(names)}
    return out


def _check_exportable(config: ModelConfig) -> str:
    """The Hugging Face architecture for ``config``, or a clear error why there is none."""
    if config.family not in ("bert", "gpt"):
        raise ValueError(f"only the 'bert' and 'gpt' families can be exported to Hugging Face, not {config.family!r}")
    problems = []
    if config.position != "learned":
        problems.append(f"position={config.position!r} (Hugging Face BERT/GPT-2 use learned positions)")
    if not config.bias:
        problems.append("bias=False")
    if config.cross_attention:
        problems.append("cross_attention=True (an encoder-decoder's decoder)")
    expected_norm = "post" if config.family == "bert" else "pre"
    if config.norm != expected_norm:
        problems.append(f"norm={config.norm!r} (expected {expected_norm!r})")
    if config.family == "bert" and not config.type_vocab_size:
        problems.append("type_vocab_size=0 (Hugging Face BERT needs token types)")
    if config.family == "gpt" and config.type_vocab_size:
        problems.append(f"type_vocab_size={config.type_vocab_size} (GPT-2 has no token-type table)")
    if config.family == "bert" and config.head == "classify" and not config.add_pooler:
        problems.append("a 'classify' head without a pooler")
    if config.family == "bert" and config.head == "lm" or config.family == "gpt" and config.head in ("pretrain", "mlm"):
        problems.append(f"head {config.head!r}")
    if problems:
        raise ValueError(f"cannot export {config.name!r} to Hugging Face: " + "; ".join(problems))
    table = _BERT_ARCHS if config.family == "bert" else _GPT2_ARCHS
    return next(arch for arch, head in table.items() if head == config.head)


def export_hf(model: nn.Module, directory: str | os.PathLike, *, labels: list[str] | None = None,
              extra_files: Mapping[str, ExtraFile] | None = None) -> Path:
    """Write ``model`` as a Hugging Face directory (config.json + model.safetensors).

    ``transformers`` loads it with ``Auto*.from_pretrained`` and computes the same
    outputs. A BERT pooler is dropped for heads that do not use it (MLM, tokens, QA).
    """
    from safetensors.torch import save_file

    config = config_of(model)
    arch = _check_exportable(config)
    directory = Path(directory)
    if is_our_directory(directory):
        raise FileExistsError(f"{directory} holds a gptbert checkpoint; refusing to overwrite it")
    state = model.state_dict()
    family = config.family
    prefix = _PREFIX[family] if config.head is not None else ""
    drop_pooler = family == "bert" and config.head in ("mlm", "tokens", "qa")
    tensors: dict[str, Tensor] = {}
    for rule in _layout(config):
        if drop_pooler and rule.ours.startswith("pooler."):
            continue
        t = state[rule.ours].detach().to("cpu")
        if rule.kind == "cat":
            pieces = list(t.chunk(len(rule.theirs), dim=0))
        elif rule.kind == "conv1d" and t.dim() == 2:
            pieces = [t.t()]
        else:
            pieces = [t]
        for name, piece in zip(rule.theirs, pieces):
            full = (prefix if _is_backbone(name) else "") + name
            tensors[full] = piece.contiguous().clone()
    if family == "bert" and config.head in ("pretrain", "mlm") and not config.tie_word_embeddings:
        # Untied, transformers applies the decoder's own bias: store it under both names.
        tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"].clone()
    dtype = float_dtype(tensors.values()) or torch.float32
    hf_config = _hf_config(config, arch, dtype, labels)
    # Hugging Face's own file: no tied tensors (each is a copy) and no gptbert metadata.
    writers: dict[str, Callable[[Path], None]] = {
        WEIGHTS_FILE: lambda path: save_file(tensors, str(path), metadata={"format": "pt"}),
    }
    writers.update({name: content_writer(content) for name, content in (extra_files or {}).items()})
    writers[CONFIG_FILE] = content_writer(hf_config)
    write_files(directory, writers)
    return directory
