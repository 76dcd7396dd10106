"""GPT-BERT (Charpentier & Samuel 2024): one transformer stack that is a causal LM, a masked LM
and a bidirectional encoder; the attention mask is chosen per call.

Modes (``mode=`` of :meth:`Hybrid.forward` / :meth:`Hybrid.encode`):

* ``'causal'``: GPT. Each position sees itself and the past; a ``KVCache`` makes decoding
  incremental, so ``gptbert.generate`` / ``stream`` decode with a hybrid as with a GPT.
* ``'masked'`` (= ``'bidirectional'``): BERT. Every position sees every real token.
  ``'masked'`` names the masked *next*-token objective: the prediction for a ``[MASK]`` at
  position i is read from position i - 1 (:meth:`Hybrid.fill_mask_logits`). Both modes
  predict the next token from every position, which is why one tied LM head serves both.
* ``'prefix'``: bidirectional over the first ``prefix_len`` tokens, causal after (a prefix LM).

The network holds no objective: :class:`gptbert.data.objectives.hybrid.HybridLMCollator`
builds causal or masked batches (``batch["mode"]``) with the targets already shifted, and
the loss is the plain cross-entropy of both.

Tokenizer: BERT's WordPiece (the presets' vocab_size is bert-base-uncased's 30522). The
masked objective needs a ``[MASK]`` token, which GPT-2's byte-level BPE lacks (adding one
would change its vocabulary and every GPT-2 checkpoint's shapes); ``[CLS]`` starts every
text, so even the first word has a position it is predicted from, in both modes; ``[SEP]``
ends it and is the end-of-text of generation; ``[PAD]`` is distinct from every real token; and
30522 entries keep the embedding share of a small model lower than 50257. The price:
WordPiece normalises text (an uncased vocabulary lower-cases it) and decodes pieces by rule,
so generated text does not round-trip bytes as GPT-2's does. The collator takes any
tokenizer with a mask token and start / end ids.

The network is GPT's (embeddings, pre-LN blocks, final LayerNorm, the tied LM head or a task
head): :class:`Hybrid` subclasses :class:`gptbert.models.gpt.GPT` and only chooses the mask
per call and pools by the mean (bidirectional states have no "last token" to read).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from gptbert.models.gpt import GPT
from gptbert.models.heads import mean_pool
from gptbert.models.transformer import KVCache

MODES = ("causal", "masked", "bidirectional", "prefix")


def _is_causal(mode: str, prefix_len: int | Tensor | None) -> bool:
    """Whether ``mode`` masks the future (causal and prefix do); checks ``prefix_len`` goes with 'prefix'."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if (mode == "prefix") != (prefix_len is not None):
        raise ValueError("prefix_len goes with mode='prefix' (and mode='prefix' needs it)")
    return mode in ("causal", "prefix")


class Hybrid(GPT):
    """GPT's stack with a per-call attention mode. ``config.head`` picks the output:

    None -> hidden states after the final LayerNorm (B, T, C); 'lm' -> next-token logits
    (B, T, V), tied to the embeddings (targets already shifted by the data code, in either
    mode); 'classify' -> (B, L) from the mean of the real tokens; 'tokens' -> (B, T, L);
    'qa' -> start/end logits (B, T, 2). The default mode is 'causal' for 'lm' and
    'bidirectional' for every other head.
    """

    family = "hybrid"

    @property
    def default_mode(self) -> str:
        return "causal" if self.config.head == "lm" else "bidirectional"

    def encode(  # type: ignore[override]
        self,
        idx: Tensor,
        *,
        mode: str = "bidirectional",
        attention_mask: Tensor | None = None,
        prefix_len: int | Tensor | None = None,
        position_ids: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Hidden states after ln_f. idx (B, T) -> (B, T, C); bidirectional unless ``mode`` says otherwise.

        ``prefix_len`` (int or (B,)) goes with mode 'prefix'. With a cache, ``idx`` holds only
        the new tokens, ``attention_mask`` covers the past and the new tokens, and the cache
        advances by T.
        """
        causal = _is_causal(mode, prefix_len)
        return super().encode(idx, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
                              causal=causal, prefix_len=prefix_len)

    def pool(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return mean_pool(hidden, attention_mask)  # (B, C)

    def forward(  # type: ignore[override]
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        *,
        mode: str | None = None,
        attention_mask: Tensor | None = None,
        prefix_len: int | Tensor | None = None,
        position_ids: Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """``mode`` None: the head's default (:attr:`default_mode`). ``last_only``: logits of the last position only."""
        hidden = self.encode(idx, mode=mode or self.default_mode, attention_mask=attention_mask,
                             prefix_len=prefix_len, position_ids=position_ids, cache=cache)  # (B, T, C)
        return self.head_outputs(hidden, targets, attention_mask=attention_mask, last_only=last_only)

    def fill_mask_logits(self, idx: Tensor, *, attention_mask: Tensor | None = None) -> Tensor:
        """Logits for the token *at* each position (fill-mask), masked mode. (B, T, V)

        Masked next-token prediction reads position i's token from position i - 1's output,
        so the logits are shifted one place right; position 0 (the start token, never
        masked) has nothing before it and gets zeros.
        """
        if self.config.head != "lm":
            raise ValueError(f"fill-mask needs the 'lm' head, this hybrid has {self.config.head!r}")
        logits, _ = self(idx, mode="masked", attention_mask=attention_mask)  # (B, T, V)
        return F.pad(logits[:, :-1], (0, 0, 1, 0))  # (B, T, V)
