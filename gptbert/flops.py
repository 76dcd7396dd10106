"""Parameter counts and FLOPs from a config alone (no torch, no model built).

The counts are exact for the BERT, GPT and hybrid families and for encoder-decoders (the
sum of their halves; checked against the built models in the tests); ELMo has no closed
form here and returns None.

FLOPs follow Kaplan et al. (2020): one forward pass costs, per token,
``2 * N_non_embedding + 2 * n_layer * n_ctx * n_embd`` (matrix multiplies count
two FLOPs per multiply-add; the second term is attention over ``n_ctx`` keys;
embedding lookups, LayerNorms, softmax and the vocabulary projection of the
embedding table are left out). Training (forward + backward) is about 3x that.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptbert.config import ModelConfig

FLOPS_CONVENTION = (
    "Kaplan et al. 2020: forward = 2*N_non_embedding + 2*n_layer*n_ctx*n_embd per token "
    "(1 multiply-add = 2 FLOPs; embeddings/softmax/norms ignored); training ~ 3x forward"
)


@dataclass(frozen=True)
class ParameterCount:
    total: int
    """Unique parameters (a tied embedding / output matrix counted once)."""
    embedding: int
    """Token, position and token-type embedding tables."""

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding


def _linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _layer_norm(n: int, bias: bool = True) -> int:
    return n * (2 if bias else 1)


def count_parameters_analytic(config: ModelConfig) -> ParameterCount | None:
    """Exact parameter count of ``build_model(config)``; None for families without a closed form (ELMo)."""
    if config.family == "encdec":
        assert config.encoder is not None and config.decoder is not None
        parts = [count_parameters_analytic(c) for c in (config.encoder, config.decoder)]
        return ParameterCount(total=sum(p.total for p in parts if p), embedding=sum(p.embedding for p in parts if p))
    if config.family not in ("bert", "gpt", "hybrid"):
        return None
    C, V, L, bias = config.n_embd, config.vocab_size, config.n_layer, config.bias
    inner = config.n_head * config.head_size
    I = config.intermediate_size or 4 * C
    embedding = V * C
    if config.position == "learned":
        embedding += config.block_size * C
    embedding += (config.type_vocab_size or 0) * C
    per_layer = (
        _linear(C, 3 * inner, bias) + _linear(inner, C, bias)  # attention
        + _linear(C, I, bias) + _linear(I, C, bias)  # MLP
        + 2 * _layer_norm(C, bias)
    )
    if config.cross_attention:  # LayerNorm, q, fused kv from the encoder width, output projection
        D = config.cross_attention_dim or C
        per_layer += _layer_norm(C, bias) + _linear(C, inner, bias) + _linear(D, 2 * inner, bias) + _linear(inner, C, bias)
    body = L * per_layer
    if config.norm == "post":
        body += _layer_norm(C, bias)  # embedding LayerNorm of post-LN models
    head = config.head
    if config.family == "bert":
        if config.add_pooler:
            body += _linear(C, C)
        if head in ("pretrain", "mlm"):
            body += _linear(C, C) + _layer_norm(C) + V  # transform + decoder bias
            if not config.tie_word_embeddings:
                body += V * C
        if head == "pretrain":
            body += _linear(C, 2)
    else:  # GPT and hybrid: a final LayerNorm, an LM head tied or not
        body += _layer_norm(C, bias)  # ln_f
        if head == "lm" and not config.tie_word_embeddings:
            body += V * C
    if head in ("classify", "tokens"):
        body += _linear(C, config.num_labels, bias=bool(config.classifier_bias) if head == "classify" else True)
    elif head == "qa":
        body += _linear(C, 2)
    return ParameterCount(total=embedding + body, embedding=embedding)


def forward_flops_per_token(config: ModelConfig, non_embedding: int, n_ctx: int | None = None) -> int:
    """Forward FLOPs per token (Kaplan et al. 2020); ``n_ctx`` defaults to ``block_size``.

    The attention term applies to transformers only (ELMo's LSTMs are inside ``non_embedding``);
    an encoder-decoder counts both halves' (a source and a target token per "token").
    """
    n_ctx = config.block_size if n_ctx is None else n_ctx
    layers = [config.encoder, config.decoder] if config.family == "encdec" else [config]
    attention = sum(2 * c.n_layer * n_ctx * c.n_embd for c in layers if c is not None and c.family != "elmo")
    return 2 * non_embedding + attention
