"""Model configuration: one dataclass and its named presets.

This module must stay importable without torch (it is used by ``gptbert --help``
and ``gptbert info`` for presets). Hugging Face names appear only in
``gptbert.io.hf``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

Family = Literal["bert", "gpt", "elmo", "hybrid", "encdec"]
FAMILIES: tuple[str, ...] = get_args(Family)
HEADS = (None, "pretrain", "mlm", "lm", "classify", "tokens", "qa")
POOLINGS = ("default", "mean", "cls", "last", "max")
"""How a sentence vector is pooled from the last hidden states (see ``ModelConfig.pooling``)."""
ENCODER_FAMILIES = ("bert", "hybrid")
"""Families an encoder-decoder's encoder may have (bidirectional stacks)."""


@dataclass
class ModelConfig:
    """Architecture of one model. Derived fields are filled in ``__post_init__``."""

    name: str = "custom"
    family: Family = "gpt"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 256
    """Maximum sequence length (number of position embeddings)."""
    vocab_size: int = 50257
    dropout: float = 0.1
    """Dropout on embeddings, attention probabilities and residual branches."""
    bias: bool = True
    intermediate_size: int | None = None
    """Width of the MLP (BERT/GPT) or of the LSTM cell (ELMo); default 4 * n_embd."""
    type_vocab_size: int | None = None
    """Number of token types (segments); default 2 for BERT, 0 for GPT and ELMo."""
    layer_norm_eps: float | None = None
    """Default 1e-12 for BERT and 1e-5 for GPT, as in the original checkpoints."""
    position: Literal["learned", "sinusoidal"] = "learned"
    activation: Literal["gelu", "gelu_tanh", "relu"] | None = None
    """Default: exact GELU for BERT, tanh-approximated GELU for GPT-2."""
    norm: Literal["pre", "post"] | None = None
    """Where LayerNorm sits in a block: GPT-2 is pre-LN, BERT is post-LN."""
    tie_word_embeddings: bool = True
    add_pooler: bool | None = None
    """BERT pooler (dense + tanh on [CLS]); default True for BERT."""
    pad_token_id: int = 0
    initializer_range: float = 0.02

    # Task head on top of the backbone.
    head: str | None = None
    """None (backbone only), 'pretrain' (MLM+NSP), 'mlm', 'lm', 'classify', 'tokens' or 'qa'."""
    num_labels: int = 2
    classifier_dropout: float | None = None
    classifier_bias: bool | None = None
    """Bias on the 'classify' head's linear layer; default True, except GPT (GPT-2's score layer has none)."""
    pooling: str = "default"
    """The sentence vector of 'classify' (and BERT's NSP): 'default' = the family's (BERT: pooler on [CLS],
    or [CLS] without a pooler; GPT: last real token; ELMo: masked mean), 'mean' over real tokens, 'cls'
    (first token, no pooler), 'last' (last real token) or 'max' (over real tokens)."""
    pool_normalize: bool = False
    """L2-normalise the pooled vector before the classifier (sentence-embedding probes)."""

    # ELMo-only fields.
    use_char_cnn: bool = True
    """ELMo token encoder: character CNN + highway (True) or plain word embeddings (False)."""
    char_vocab_size: int = 262
    char_embd: int = 16
    char_filters: tuple[tuple[int, int], ...] = ((1, 32), (2, 32), (3, 64), (4, 128), (5, 256))
    """(width, number of filters) pairs of the character CNN."""
    max_word_chars: int = 50
    n_highway: int = 2
    freeze_backbone: bool = False
    """Fine-tuning: keep the pre-trained backbone (e.g. ELMo's LSTMs) frozen."""

    # Encoder-decoder fields.
    cross_attention: bool = False
    """GPT blocks get a cross-attention sublayer over encoder states (an encoder-decoder's decoder)."""
    cross_attention_dim: int | None = None
    """Width of the encoder states cross-attention reads; default n_embd."""
    encoder: ModelConfig | None = None
    """family 'encdec': the encoder's config (family 'bert' or 'hybrid', backbone only)."""
    decoder: ModelConfig | None = None
    """family 'encdec': the decoder's config (family 'gpt', head 'lm', cross-attention on). The
    top-level shape fields (vocab_size, block_size, n_embd, n_head, n_layer, pad_token_id, head)
    mirror the decoder's."""

    # Derived.
    head_size: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"ModelConfig.family: expected one of {', '.join(map(repr, FAMILIES))}, got {self.family!r}")
        self._encoder_decoder_fields()
        for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelConfig.{name}: expected a positive integer, got {value!r}")
        if self.family != "elmo" and self.n_embd % self.n_head != 0:
            raise ValueError(
                f"ModelConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout: expected a value in [0, 1), got {self.dropout!r}")
        if self.head not in HEADS:
            raise ValueError(f"ModelConfig.head: expected one of {HEADS}, got {self.head!r}")
        if self.head in ("classify", "tokens") and self.num_labels < 1:
            raise ValueError(f"ModelConfig.num_labels: expected >= 1, got {self.num_labels}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"ModelConfig.pooling: expected one of {POOLINGS}, got {self.pooling!r}")
        if self.position not in ("learned", "sinusoidal"):
            raise ValueError(f"ModelConfig.position: expected 'learned' or 'sinusoidal', got {self.position!r}")
        bert = self.family == "bert"
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.n_embd
        if self.type_vocab_size is None:
            self.type_vocab_size = 2 if bert else 0
        if self.layer_norm_eps is None:
            self.layer_norm_eps = 1e-12 if bert else 1e-5
        if self.activation is None:
            self.activation = "gelu" if bert else "gelu_tanh"
        if self.norm is None:
            self.norm = "post" if bert else "pre"
        if self.add_pooler is None:
            self.add_pooler = bert
        if self.classifier_dropout is None:
            self.classifier_dropout = self.dropout
        if self.classifier_bias is None:
            self.classifier_bias = self.family != "gpt"
        if self.cross_attention and self.family != "gpt":
            raise ValueError(f"ModelConfig.cross_attention: only GPT decoders have cross-attention, not {self.family!r}")
        if self.cross_attention and self.cross_attention_dim is None:
            self.cross_attention_dim = self.n_embd
        self.char_filters = tuple(tuple(f) for f in self.char_filters)  # type: ignore[assignment]
        self.head_size = self.n_embd // self.n_head

    def _encoder_decoder_fields(self) -> None:
        """family 'encdec': sub-configs from dicts, their roles fixed, top-level fields from the decoder."""
        if self.family != "encdec":
            if self.encoder is not None or self.decoder is not None:
                raise ValueError(f"ModelConfig: encoder / decoder sub-configs are for family 'encdec', not {self.family!r}")
            return
        if self.encoder is None or self.decoder is None:
            raise ValueError("ModelConfig: family 'encdec' needs both an encoder and a decoder config")
        enc = self.encoder if isinstance(self.encoder, ModelConfig) else ModelConfig.from_dict(self.encoder)
        dec = self.decoder if isinstance(self.decoder, ModelConfig) else ModelConfig.from_dict(self.decoder)
        if enc.family not in ENCODER_FAMILIES:
            raise ValueError(f"ModelConfig.encoder: expected family {' or '.join(ENCODER_FAMILIES)}, got {enc.family!r}")
        if dec.family != "gpt":
            raise ValueError(f"ModelConfig.decoder: expected family 'gpt', got {dec.family!r}")
        if enc.head is not None or (enc.family == "bert" and enc.add_pooler):
            enc = enc.replace(head=None, add_pooler=False)  # the encoder is a backbone
        if dec.head != "lm" or not dec.cross_attention or dec.cross_attention_dim != enc.n_embd:
            dec = dec.replace(head="lm", cross_attention=True, cross_attention_dim=enc.n_embd)
        self.encoder, self.decoder = enc, dec
        for name in ("vocab_size", "block_size", "n_embd", "n_head", "n_layer", "pad_token_id", "head"):
            setattr(self, name, getattr(dec, name))

    @property
    def causal(self) -> bool:
        return self.family == "gpt"

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> "ModelConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
        kwargs = dict(PRESETS[name])
        kwargs.update(overrides)
        return cls(name=name, **kwargs)

    @classmethod
    def of(cls, model: Any) -> "ModelConfig":
        """The ``ModelConfig`` a gptbert model carries in ``.config`` (a TypeError for any other object)."""
        config = getattr(model, "config", None)
        if not isinstance(config, cls):
            raise TypeError(f"{type(model).__name__} has no ModelConfig in .config; not a gptbert model")
        return config

    def replace(self, **changes: Any) -> "ModelConfig":
        data = self.to_dict()
        data.update(changes)
        return ModelConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("head_size")
        data["char_filters"] = [list(f) for f in self.char_filters]
        for part in ("encoder", "decoder"):  # only an encoder-decoder's config.json names them
            sub = getattr(self, part)
            if sub is None:
                data.pop(part)
            else:
                data[part] = sub.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(data) - known - {"head_size"})
        if unknown:
            raise ValueError(f"ModelConfig: unknown field(s) {unknown}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None


_BERT_VOCAB = 30522
_GPT2_VOCAB = 50257

PRESETS: dict[str, dict[str, Any]] = {
    # BERT family (Turc et al. 2019 compact models; Devlin et al. 2019).
    "bert-tiny": dict(family="bert", n_layer=2, n_head=2, n_embd=128, block_size=512, vocab_size=_BERT_VOCAB),
    "bert-mini": dict(family="bert", n_layer=4, n_head=4, n_embd=256, block_size=512, vocab_size=_BERT_VOCAB),
    "bert-small": dict(family="bert", n_layer=4, n_head=8, n_embd=512, block_size=512, vocab_size=_BERT_VOCAB),
    "bert-medium": dict(family="bert", n_layer=8, n_head=8, n_embd=512, block_size=512, vocab_size=_BERT_VOCAB),
    "bert-base": dict(family="bert", n_layer=12, n_head=12, n_embd=768, block_size=512, vocab_size=_BERT_VOCAB),
    "bert-large": dict(family="bert", n_layer=24, n_head=16, n_embd=1024, block_size=512, vocab_size=_BERT_VOCAB),
    # all-MiniLM-L6-v2 (Wang et al. 2020, sentence-transformers).
    "minilm-l6": dict(family="bert", n_layer=6, n_head=12, n_embd=384, intermediate_size=1536,
                      block_size=512, vocab_size=_BERT_VOCAB),
    # GPT family: minGPT-sized models and the four GPT-2 sizes (Radford et al. 2019).
    "gpt-nano": dict(family="gpt", n_layer=3, n_head=3, n_embd=48, block_size=256, vocab_size=_GPT2_VOCAB),
    "gpt-micro": dict(family="gpt", n_layer=4, n_head=4, n_embd=128, block_size=256, vocab_size=_GPT2_VOCAB),
    "gpt-mini": dict(family="gpt", n_layer=6, n_head=6, n_embd=192, block_size=256, vocab_size=_GPT2_VOCAB),
    "gpt2": dict(family="gpt", n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=_GPT2_VOCAB),
    "gpt2-medium": dict(family="gpt", n_layer=24, n_head=16, n_embd=1024, block_size=1024, vocab_size=_GPT2_VOCAB),
    "gpt2-large": dict(family="gpt", n_layer=36, n_head=20, n_embd=1280, block_size=1024, vocab_size=_GPT2_VOCAB),
    "gpt2-xl": dict(family="gpt", n_layer=48, n_head=25, n_embd=1600, block_size=1024, vocab_size=_GPT2_VOCAB),
    # ELMo-style biLSTM LMs (Peters et al. 2018): n_embd is the projection size,
    # intermediate_size the LSTM cell size; n_head is unused.
    "elmo-small": dict(family="elmo", n_layer=2, n_head=1, n_embd=256, intermediate_size=1024,
                       block_size=256, vocab_size=_BERT_VOCAB,
                       char_filters=((1, 32), (2, 32), (3, 64), (4, 128), (5, 256))),
    "elmo-medium": dict(family="elmo", n_layer=2, n_head=1, n_embd=512, intermediate_size=2048,
                        block_size=256, vocab_size=_BERT_VOCAB,
                        char_filters=((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024))),
    # GPT-BERT hybrids (Charpentier & Samuel 2024): one stack trained causal + masked-next-token,
    # BERT's WordPiece vocabulary (it has [MASK]; see gptbert.models.hybrid). hybrid-micro has
    # gpt-micro's shape, hybrid-mini bert-mini's (the same parameter count, ~11 M).
    "hybrid-micro": dict(family="hybrid", n_layer=4, n_head=4, n_embd=128, block_size=512, vocab_size=_BERT_VOCAB),
    "hybrid-mini": dict(family="hybrid", n_layer=4, n_head=4, n_embd=256, block_size=512, vocab_size=_BERT_VOCAB),
}


def _part(name: str) -> dict[str, Any]:
    return dict(PRESETS[name], name=name)


# Encoder-decoders ("bert2gpt"): a BERT encoder, a GPT decoder with cross-attention.
PRESETS["bert2gpt-micro"] = dict(family="encdec", encoder=_part("bert-tiny"), decoder=_part("gpt-micro"))
PRESETS["bert2gpt-mini"] = dict(family="encdec", encoder=_part("bert-mini"), decoder=_part("gpt-mini"))


def preset_names(family: str | None = None) -> list[str]:
    return [n for n, p in PRESETS.items() if family is None or p["family"] == family]
