"""ELMo-style baseline (Peters et al. 2018): a character CNN and a bidirectional LSTM LM.

Reads top to bottom, small parts first:

    Highway -> CharCNN -> LSTMP -> LSTMStack -> ScalarMix -> padding helpers -> ELMo

Token encoder: ``CharCNN`` (characters -> convolutions -> max over characters ->
highway -> projection to ``n_embd``) or, with ``use_char_cnn=False``, a plain word
embedding ``nn.Embedding(vocab_size, n_embd)``.

Two independent LSTM stacks, each ``n_layer`` layers of cell size ``intermediate_size``
projected back to ``n_embd`` (LSTMP, Sak et al. 2014), residual from layer 2 on: the
forward LM reads left to right and predicts the next token, the backward LM reads right
to left and predicts the previous one. Both start from a zero state on every call (no
state is carried across batches).

Padding. ``attention_mask`` (B, T) marks real tokens with 1; they may be right- or
left-padded. Before the LSTMs every row is rearranged by index gathering so that its real
tokens come first (forward LM: in order; backward LM: reversed within the row's real
length) and its pads last; after the LSTMs the outputs are gathered back. An LSTM only
looks backwards in its own input, so real outputs never see padding, the forward LM never
sees the future and the backward LM never sees the past. Pad positions of every output
layer are zeroed.

Conventions other modules rely on:

* ``char_ids`` (B, T, W) int64 in [0, char_vocab_size), 0 = padding character (also for
  whole pad words). The encoding itself belongs to the data code
  (``gptbert.data.objectives.char_ids_for_words``); the model only relies on 0 = pad.
* Head 'lm' targets (B, T, 2) = [next-token id, previous-token id], -100 ignored;
  ``lm_targets(idx, attention_mask)`` builds them. Targets (B, T) are read as the
  next-token targets of a GPT-style batch and the previous-token targets are derived
  from ``idx``.
* LM softmax: full softmax over ``vocab_size``. With word embeddings and
  ``tie_word_embeddings`` the output matrix is the input embedding; with the character
  CNN there is no input word matrix, so the output is its own ``nn.Linear(n_embd, V)``
  (a 30k full softmax is affordable on CPU; no sampled softmax).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gptbert.config import ModelConfig
from gptbert.models.heads import TaskHead, cross_entropy, mean_pool, sentence_vector
from gptbert.models.transformer import IGNORE_INDEX

# nn.LSTM(proj_size=...) falls back from oneDNN to PyTorch's own kernel on CPU (still
# faster than an LSTM of the full cell size plus a projection); the note is just noise.
warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")

CHAR_PAD = 0
"""Character id of padding (inside a word and for pad words); its embedding is zero."""


# --------------------------------------------------------------------------- token encoder


class Highway(nn.Module):
    """Stack of highway layers (Srivastava et al. 2015): y = g * x + (1 - g) * relu(W x).

    g = sigmoid(W_g x) is the carry gate; its bias starts at +1 so that an untrained
    layer mostly passes its input through.
    """

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        self.dim = dim
        # One matmul per layer gives both the transform and the gate.
        self.layers = nn.ModuleList([nn.Linear(dim, 2 * dim) for _ in range(n_layers)])
        for layer in self.layers:
            nn.init.zeros_(layer.bias[:dim])
            nn.init.ones_(layer.bias[dim:])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:  # x: (N, D)
            transform, gate = layer(x).chunk(2, dim=-1)  # (N, D), (N, D)
            carry = torch.sigmoid(gate)  # (N, D)
            x = carry * x + (1.0 - carry) * F.relu(transform)  # (N, D)
        return x


class CharCNN(nn.Module):
    """Word vectors from characters: char ids (B, T, W) -> (B, T, n_embd).

    Character embeddings -> one 1-D convolution per (width, filters) pair -> max over
    character positions -> ReLU -> highway -> linear projection to ``n_embd``. Words
    shorter than the widest filter are padded with the pad character.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.char_filters:
            raise ValueError("CharCNN: config.char_filters is empty")
        self.char_embedding = nn.Embedding(config.char_vocab_size, config.char_embd, padding_idx=CHAR_PAD)
        self.convs = nn.ModuleList(
            [nn.Conv1d(config.char_embd, n, kernel_size=w) for w, n in config.char_filters]
        )
        self.n_filters = sum(n for _, n in config.char_filters)
        self.min_chars = max(w for w, _ in config.char_filters)
        self.highway = Highway(self.n_filters, config.n_highway)
        self.proj = nn.Linear(self.n_filters, config.n_embd)
        nn.init.uniform_(self.char_embedding.weight, -1.0, 1.0)
        with torch.no_grad():
            self.char_embedding.weight[CHAR_PAD].zero_()

    def forward(self, char_ids: Tensor) -> Tensor:
        if char_ids.dim() != 3:
            raise ValueError(f"CharCNN: char_ids must be (B, T, W), got shape {tuple(char_ids.shape)}")
        B, T, W = char_ids.shape  # (B, T, W)
        if W < self.min_chars:
            char_ids = F.pad(char_ids, (0, self.min_chars - W), value=CHAR_PAD)  # (B, T, W')
            W = self.min_chars
        c = self.char_embedding(char_ids.reshape(B * T, W))  # (B*T, W, E)
        c = c.transpose(1, 2)  # (B*T, E, W)
        pooled = [conv(c).amax(dim=-1) for conv in self.convs]  # [(B*T, n_k)]: max over characters
        h = F.relu(torch.cat(pooled, dim=-1))  # (B*T, F)
        h = self.highway(h)  # (B*T, F)
        return self.proj(h).view(B, T, -1)  # (B, T, C)


# --------------------------------------------------------------------------- biLSTM


class LSTMP(nn.Module):
    """One unidirectional LSTM layer with cell size ``n_cell`` and output size ``n_out``.

    When the cell is wider than the output this is an LSTM with a recurrent projection
    (``nn.LSTM(proj_size=...)``: the projected state is both the output and the state fed
    back, as in ELMo); otherwise a plain LSTM followed by a linear projection.
    The forget-gate bias starts at 1, the other biases at 0.
    """

    def __init__(self, n_in: int, n_cell: int, n_out: int) -> None:
        super().__init__()
        self.proj: nn.Linear | None = None
        if n_cell > n_out:
            self.lstm = nn.LSTM(n_in, n_cell, batch_first=True, proj_size=n_out)
        else:
            self.lstm = nn.LSTM(n_in, n_cell, batch_first=True)
            self.proj = nn.Linear(n_cell, n_out)
        # PyTorch gate order is (input, forget, cell, output); the two biases are summed.
        nn.init.zeros_(self.lstm.bias_ih_l0)
        nn.init.zeros_(self.lstm.bias_hh_l0)
        with torch.no_grad():
            self.lstm.bias_ih_l0[n_cell : 2 * n_cell].fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.lstm(x)  # (B, T, n_out) with proj_size, else (B, T, n_cell)
        return y if self.proj is None else self.proj(y)  # (B, T, n_out)


class LSTMStack(nn.Module):
    """One direction of the biLM: ``n_layer`` LSTMP layers, residual from layer 2 on.

    Reads its input left to right (the caller reverses rows for the backward LM) and
    returns every layer's output; dropout is applied to each layer's input.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        C, H = config.n_embd, config.intermediate_size
        assert H is not None
        self.layers = nn.ModuleList([LSTMP(C, H, C) for _ in range(config.n_layer)])
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs: list[Tensor] = []
        h = x  # (B, T, C)
        for i, layer in enumerate(self.layers):
            y = layer(self.drop(h))  # (B, T, C)
            h = y + h if i > 0 else y  # (B, T, C)
            outputs.append(h)
        return outputs


# --------------------------------------------------------------------------- scalar mix


class ScalarMix(nn.Module):
    """gamma * sum_k softmax(s)_k * layer_k: a learned weighting of a model's layers.

    ``forward(layers, mask=None)`` takes ``n_layers`` tensors of one shape (..., D).
    With ``layer_norm=True`` each layer is first normalised per position (no affine), so
    a row's result never depends on the rest of the batch. With a mask (same leading
    shape as the layers, 1 = real) padded positions of the result are zero.
    """

    def __init__(self, n_layers: int, *, layer_norm: bool = False, trainable: bool = True) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"ScalarMix: n_layers must be >= 1, got {n_layers}")
        self.n_layers = n_layers
        self.layer_norm = layer_norm
        self.scalars = nn.Parameter(torch.zeros(n_layers), requires_grad=trainable)
        self.gamma = nn.Parameter(torch.ones(()), requires_grad=trainable)

    def weights(self) -> Tensor:
        """The normalised layer weights (n_layers,), summing to 1."""
        return torch.softmax(self.scalars, dim=0)

    def forward(self, layers: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        if len(layers) != self.n_layers:
            raise ValueError(f"ScalarMix: expected {self.n_layers} layers, got {len(layers)}")
        w = self.weights()  # (K,)
        out = None
        for k, layer in enumerate(layers):  # layer: (..., D)
            if self.layer_norm:
                layer = F.layer_norm(layer, layer.shape[-1:])
            term = w[k].to(layer.dtype) * layer
            out = term if out is None else out + term
        assert out is not None
        out = self.gamma.to(out.dtype) * out  # (..., D)
        if mask is not None:
            out = out * mask[..., None].to(out.dtype)
        return out


# --------------------------------------------------------------------------- padding helpers


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, C), index (B, T) -> x[b, index[b, t]] (B, T, C)."""
    return x.gather(1, index[..., None].expand(-1, -1, x.size(-1)))


def _inverse_permutation(perm: Tensor) -> Tensor:
    """Row-wise inverse of a permutation (B, T)."""
    positions = torch.arange(perm.size(1), device=perm.device).expand_as(perm)  # (B, T)
    return torch.empty_like(perm).scatter_(1, perm, positions)


def reading_orders(attention_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Positions the forward and backward LMs read, step by step. (B, T) each.

    Forward: the row's real positions in order, then its pad positions. Backward: the
    real positions in reverse order, then the pad positions. Works for right and left
    padding (any mask, in fact).
    """
    B, T = attention_mask.shape
    real = attention_mask.bool()  # (B, T)
    # A stable sort on "is pad" keeps the real tokens' order and puts pads last.
    fwd = torch.sort((~real).to(torch.int64), dim=1, stable=True).indices  # (B, T)
    lengths = real.sum(dim=1, keepdim=True)  # (B, 1)
    step = torch.arange(T, device=real.device).expand(B, T)  # (B, T)
    src = torch.where(step < lengths, lengths - 1 - step, step)  # (B, T): reverse within the length
    bwd = fwd.gather(1, src)  # (B, T)
    return fwd, bwd


def lm_targets(idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """biLM targets (B, T, 2) = [next token, previous token], -100 off the ends and on pads.

    Assumes each row's real tokens are contiguous (right or left padding).
    """
    B, T = idx.shape
    real = torch.ones_like(idx, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    targets = torch.full((B, T, 2), IGNORE_INDEX, dtype=torch.long, device=idx.device)
    if T > 1:
        both = real[:, :-1] & real[:, 1:]  # (B, T-1): position t and t+1 are real
        targets[:, :-1, 0] = torch.where(both, idx[:, 1:], IGNORE_INDEX)
        targets[:, 1:, 1] = torch.where(both, idx[:, :-1], IGNORE_INDEX)
    return targets


# --------------------------------------------------------------------------- the model


class ELMo(nn.Module):
    """Bidirectional LSTM language model with ELMo embeddings. ``config.head`` picks the output:

    None -> scalar-mixed embeddings (B, T, 2C); 'lm' -> (forward logits (B, T, V),
    backward logits (B, T, V)) and the mean of the two LM losses; 'classify' -> (B, L) on
    the masked mean of the embeddings; 'tokens' -> (B, T, L); 'qa' -> (B, T, 2).
    Representation layers: 0 = token vectors as [x; x], l = [forward_l; backward_l].
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.family != "elmo":
            raise ValueError(f"ELMo needs a config of family 'elmo', got {config.family!r}")
        if config.head not in (None, "lm", "classify", "tokens", "qa"):
            raise ValueError(f"ELMo supports heads None, 'lm', 'classify', 'tokens', 'qa'; got {config.head!r}")
        self.config = config
        C, V = config.n_embd, config.vocab_size
        self.char_cnn: CharCNN | None = CharCNN(config) if config.use_char_cnn else None
        self.wte: nn.Embedding | None = None if config.use_char_cnn else nn.Embedding(V, C)
        self.forward_lm = LSTMStack(config)
        self.backward_lm = LSTMStack(config)
        self.scalar_mix = ScalarMix(config.n_layer + 1)
        self.drop = nn.Dropout(config.dropout)
        self.lm_head: nn.Linear | None = None
        self.task: TaskHead | None = None
        if config.head == "lm":
            self.lm_head = nn.Linear(C, V, bias=config.bias)
        elif config.head is not None:
            self.task = TaskHead(config, 2 * C)
        self.last_losses: dict[str, Tensor] = {}
        self._init_weights()
        self.tie_weights()
        if config.freeze_backbone:
            self.freeze_backbone()

    def _init_weights(self) -> None:
        # Small parts initialise themselves; here the word matrices and the heads.
        std = self.config.initializer_range
        linears = [self.lm_head] + ([self.task.out.out] if self.task is not None else [])
        for m in linears:
            if m is not None:
                nn.init.normal_(m.weight, mean=0.0, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.wte is not None:
            nn.init.normal_(self.wte.weight, mean=0.0, std=std)

    def tie_weights(self) -> None:
        if self.lm_head is not None and self.wte is not None and self.config.tie_word_embeddings:
            self.lm_head.weight = self.wte.weight

    def backbone_modules(self) -> list[nn.Module]:
        """Token encoder and both LSTM stacks (what ``freeze_backbone`` freezes)."""
        encoder = self.char_cnn if self.char_cnn is not None else self.wte
        assert encoder is not None
        return [encoder, self.forward_lm, self.backward_lm]

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Stop (or restart) training the token encoder and the LSTMs."""
        for module in self.backbone_modules():
            for p in module.parameters():
                p.requires_grad_(not frozen)

    # ------------------------------------------------------------------ backbone

    def token_vectors(self, idx: Tensor, char_ids: Tensor | None = None) -> Tensor:
        """Context-free token vectors (B, T, C) from the char CNN or the word embedding."""
        if self.char_cnn is not None:
            if char_ids is None:
                raise ValueError(
                    "ELMo with use_char_cnn=True needs char_ids (B, T, max_word_chars) "
                    "from the data collator; got char_ids=None"
                )
            if char_ids.shape[:2] != idx.shape:
                raise ValueError(f"char_ids {tuple(char_ids.shape)} does not match idx {tuple(idx.shape)}")
            return self.char_cnn(char_ids)  # (B, T, C)
        assert self.wte is not None
        return self.wte(idx)  # (B, T, C)

    def _bilm(
        self, idx: Tensor, char_ids: Tensor | None, attention_mask: Tensor | None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Token vectors (B, T, C) and the forward / backward layers [(B, T, C)] * n_layer,
        all in the original token order, pad positions zeroed."""
        x = self.token_vectors(idx, char_ids)  # (B, T, C)
        if attention_mask is None:
            fwd = self.forward_lm(x)  # [(B, T, C)]
            bwd = [h.flip(1) for h in self.backward_lm(x.flip(1))]  # [(B, T, C)]
            return x, fwd, bwd
        if attention_mask.shape != idx.shape:
            raise ValueError(f"attention_mask {tuple(attention_mask.shape)} does not match idx {tuple(idx.shape)}")
        fwd_order, bwd_order = reading_orders(attention_mask)  # (B, T), (B, T)
        fwd_back, bwd_back = _inverse_permutation(fwd_order), _inverse_permutation(bwd_order)  # (B, T)
        keep = attention_mask[..., None].to(x.dtype)  # (B, T, 1)
        fwd = [_gather_time(h, fwd_back) * keep for h in self.forward_lm(_gather_time(x, fwd_order))]
        bwd = [_gather_time(h, bwd_back) * keep for h in self.backward_lm(_gather_time(x, bwd_order))]
        return x * keep, fwd, bwd

    def layers(
        self,
        idx: Tensor,
        *,
        char_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> list[Tensor]:
        """All representation layers, n_layer + 1 tensors (B, T, 2C)."""
        x, fwd, bwd = self._bilm(idx, char_ids, attention_mask)
        return [torch.cat([x, x], dim=-1)] + [torch.cat([f, b], dim=-1) for f, b in zip(fwd, bwd)]

    def encode(
        self,
        idx: Tensor,
        *,
        char_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Scalar-mixed ELMo embeddings. idx (B, T) -> (B, T, 2C)"""
        layers = self.layers(idx, char_ids=char_ids, attention_mask=attention_mask)
        return self.scalar_mix(layers, attention_mask)  # (B, T, 2C)

    def pool(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Sentence vector (B, 2C) as ``config.pooling`` says (default: the masked mean)."""
        return sentence_vector(self.config, hidden, attention_mask, mean_pool)

    # ------------------------------------------------------------------ LM

    @staticmethod
    def lm_losses(logits: tuple[Tensor, Tensor], targets: Tensor) -> dict[str, Tensor]:
        """Per-direction cross-entropies {'fwd', 'bwd'} for targets (B, T, 2)."""
        fwd_logits, bwd_logits = logits
        return {"fwd": cross_entropy(fwd_logits, targets[..., 0]), "bwd": cross_entropy(bwd_logits, targets[..., 1])}

    def _lm_targets(self, idx: Tensor, targets: Tensor, attention_mask: Tensor | None) -> Tensor:
        if targets.shape == (*idx.shape, 2):
            return targets
        if targets.shape == idx.shape:  # GPT-style next-token targets: derive the previous tokens
            derived = lm_targets(idx, attention_mask)
            return torch.stack([targets, derived[..., 1]], dim=-1)
        raise ValueError(f"ELMo 'lm' targets must be (B, T, 2) or (B, T), got {tuple(targets.shape)}")

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        *,
        char_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,  # accepted for collator compatibility, unused
    ) -> tuple[Tensor | tuple[Tensor, Tensor], Tensor | None]:
        head = self.config.head
        if head == "lm":
            assert self.lm_head is not None
            _, fwd, bwd = self._bilm(idx, char_ids, attention_mask)
            fwd_logits = self.lm_head(self.drop(fwd[-1]))  # (B, T, V): predicts token t+1
            bwd_logits = self.lm_head(self.drop(bwd[-1]))  # (B, T, V): predicts token t-1
            logits = (fwd_logits, bwd_logits)
            if targets is None:
                return logits, None
            losses = self.lm_losses(logits, self._lm_targets(idx, targets, attention_mask))
            self.last_losses = {k: v.detach() for k, v in losses.items()}
            return logits, (losses["fwd"] + losses["bwd"]) / 2
        hidden = self.encode(idx, char_ids=char_ids, attention_mask=attention_mask)  # (B, T, 2C)
        if head is None:
            return hidden, None
        assert self.task is not None
        pooled = self.pool(hidden, attention_mask) if head == "classify" else None  # (B, 2C)
        return self.task(hidden, pooled, targets)
