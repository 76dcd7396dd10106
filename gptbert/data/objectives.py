"""Pre-training objectives as batch builders.

The models are objective-free: they take ``idx`` and ``targets`` (ignore index -100) and
compute a plain cross-entropy. Everything that makes an objective (masking, next-sentence
pairs, shifting, packing) happens here, before the batch reaches the model.

* BERT: :func:`mask_tokens` (MLM with 80/10/10 replacement, optional whole-word masking),
  :func:`create_nsp_examples` (next-sentence pairs), :class:`BertPretrainCollator`,
  :class:`MLMCollator`.
* GPT: :func:`pack_blocks` / :class:`PackedBlocks` (a corpus as one token stream cut into
  blocks; memmap-friendly) and :class:`CausalLMCollator` (one example per row, padded).
* ELMo: :class:`ElmoLMCollator` (forward and backward next-token targets plus character
  ids for a character CNN).

Batches are dicts of tensors, called as ``model(**batch)``. Every builder is
deterministic given its seed or generator; nothing here touches the global RNG.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Literal, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

IGNORE_INDEX = -100

# ---------------------------------------------------------------------------------------
# Small shared helpers
# ---------------------------------------------------------------------------------------


class TokenizerLike(Protocol):
    """The part of :class:`gptbert.tokenizer.Tokenizer` the builders use."""

    kind: str
    vocab_size: int
    pad_id: int
    unk_id: int | None
    cls_id: int | None
    sep_id: int | None
    mask_id: int | None
    bos_id: int | None
    eos_id: int | None
    special_ids: frozenset[int]

    def encode(self, text: str, pair: str | None = None, **kwargs: Any) -> Any: ...


def as_generator(seed_or_generator: int | torch.Generator | None) -> torch.Generator:
    """A ``torch.Generator``: the one given, or a fresh one seeded with the int (0 if None)."""
    if isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    g = torch.Generator()
    g.manual_seed(0 if seed_or_generator is None else int(seed_or_generator))
    return g


def as_rng(seed_or_rng: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator``: the one given, or one seeded with the int (0 if None)."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(0 if seed_or_rng is None else int(seed_or_rng))


def pad_sequences(
    seqs: Sequence[Sequence[int]],
    pad_value: int,
    *,
    padding_side: Literal["right", "left"] = "right",
    length: int | None = None,
    pad_to_multiple_of: int | None = None,
    dtype: torch.dtype = torch.long,
) -> torch.Tensor:
    """Stack ragged integer sequences into a (B, T) tensor, T = longest (or ``length``)."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side: expected 'right' or 'left', got {padding_side!r}")
    longest = max((len(s) for s in seqs), default=0)
    T = max(longest, length or 0)
    if pad_to_multiple_of:
        T = -(-T // pad_to_multiple_of) * pad_to_multiple_of
    out = torch.full((len(seqs), T), pad_value, dtype=dtype)  # (B, T)
    for i, s in enumerate(seqs):
        n = len(s)
        if n == 0:
            continue
        row = torch.as_tensor(list(s) if not isinstance(s, torch.Tensor) else s, dtype=dtype)  # (n,)
        if padding_side == "right":
            out[i, :n] = row
        else:
            out[i, T - n :] = row
    return out


def eos_or_sep(tokenizer: TokenizerLike) -> int:
    """The id that ends a text: EOS for GPT-style vocabularies, SEP for BERT-style ones."""
    for name in ("eos_id", "sep_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise ValueError("tokenizer has neither an end-of-text (eos_id) nor a separator (sep_id) token")


# ---------------------------------------------------------------------------------------
# Masked language modelling
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _replacement_pool(vocab_size: int, excluded: frozenset[int]) -> torch.Tensor:
    keep = torch.ones(vocab_size, dtype=torch.bool)  # (V,)
    ids = [i for i in excluded if 0 <= i < vocab_size]
    if ids:
        keep[torch.tensor(ids, dtype=torch.long)] = False
    pool = torch.nonzero(keep).squeeze(1)  # (V',)
    if pool.numel() == 0:
        raise ValueError("no ordinary token is left to use as a random replacement")
    return pool


def word_ids_to_tensor(word_ids: Sequence[Sequence[int | None]], length: int | None = None,
                       *, padding_side: Literal["right", "left"] = "right") -> torch.Tensor:
    """Per-example word ids (``None`` for specials) to a (B, T) tensor with -1 for no word."""
    rows = [[-1 if w is None else int(w) for w in ws] for ws in word_ids]
    return pad_sequences(rows, -1, length=length, padding_side=padding_side)


def renumber_words(word_ids: torch.Tensor) -> torch.Tensor:
    """Give every word of a row a distinct index 0..W-1 in order of appearance.

    ``word_ids`` (B, T): -1 for positions outside any word; a run of equal non-negative
    values is one word. Runs are renumbered so that ids that restart (e.g. in the second
    text of a pair, after [SEP]) do not collide with words of the first text.
    """
    valid = word_ids >= 0  # (B, T)
    prev = torch.cat([torch.full_like(word_ids[:, :1], -1), word_ids[:, :-1]], dim=1)  # (B, T)
    starts = valid & (word_ids != prev)  # (B, T)
    index = torch.cumsum(starts.long(), dim=1) - 1  # (B, T)
    return torch.where(valid, index, torch.full_like(index, -1))


def mask_tokens(
    idx: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int] | None = None,
    special_mask: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    pad_id: int | None = None,
    mlm_probability: float = 0.15,
    mask_frac: float = 0.8,
    random_frac: float = 0.1,
    generator: torch.Generator | int | None = None,
    word_ids: torch.Tensor | Sequence[Sequence[int | None]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-LM corruption.

    Each ordinary token (not special, not padding) is chosen with probability
    ``mlm_probability``; a chosen token becomes ``mask_id`` with probability ``mask_frac``,
    a uniformly drawn ordinary token (never a special id, never the mask or pad id) with
    probability ``random_frac``, and stays as it is otherwise.

    With ``word_ids`` (B, T) (-1 or None where there is no word), whole words are chosen
    with probability ``mlm_probability`` and all their pieces become targets; the 80/10/10
    decision is still made per piece.

    Returns ``(masked_idx, targets)``, both (B, T) long; ``targets`` holds the original id
    at chosen positions and -100 elsewhere. ``idx`` is not modified.
    """
    if special_ids is None and special_mask is None:
        raise ValueError("mask_tokens: pass special_ids or special_mask so that specials are never masked")
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability: expected a value in [0, 1], got {mlm_probability}")
    if mask_frac < 0 or random_frac < 0 or mask_frac + random_frac > 1.0 + 1e-9:
        raise ValueError(f"mask_frac + random_frac must lie in [0, 1], got {mask_frac} + {random_frac}")
    if idx.dim() != 2:
        raise ValueError(f"mask_tokens: idx must be (B, T), got shape {tuple(idx.shape)}")
    g = as_generator(generator)
    idx = idx.long()
    B, T = idx.shape

    specials = set(int(i) for i in special_ids) if special_ids is not None else set()
    candidates = torch.ones_like(idx, dtype=torch.bool)  # (B, T)
    if specials:
        candidates &= ~torch.isin(idx, torch.tensor(sorted(specials), dtype=torch.long))
    if special_mask is not None:
        special_mask = special_mask.bool()  # (B, T)
        candidates &= ~special_mask
        specials |= set(idx[special_mask].unique().tolist())
    if attention_mask is not None:
        candidates &= attention_mask.bool()
    if pad_id is not None:
        candidates &= idx != pad_id
        specials.add(int(pad_id))
    specials.add(int(mask_id))

    if word_ids is None:
        chosen = (torch.rand(B, T, generator=g) < mlm_probability) & candidates  # (B, T)
    else:
        if not isinstance(word_ids, torch.Tensor):
            word_ids = word_ids_to_tensor(word_ids, length=T)
        if word_ids.shape != idx.shape:
            raise ValueError(f"word_ids shape {tuple(word_ids.shape)} != idx shape {tuple(idx.shape)}")
        words = renumber_words(word_ids.long())  # (B, T), -1 outside words
        W = int(words.max().item()) + 1 if words.numel() else 0
        picked = torch.rand(B, max(W, 1), generator=g) < mlm_probability  # (B, W)
        chosen = picked.gather(1, words.clamp(min=0)) & (words >= 0) & candidates  # (B, T)

    u = torch.rand(B, T, generator=g)  # (B, T)
    to_mask = chosen & (u < mask_frac)
    to_random = chosen & (u >= mask_frac) & (u < mask_frac + random_frac)
    pool = _replacement_pool(int(vocab_size), frozenset(specials))  # (V',)
    random_tokens = pool[torch.randint(0, pool.numel(), (B, T), generator=g)]  # (B, T)

    targets = torch.where(chosen, idx, torch.full_like(idx, IGNORE_INDEX))  # (B, T)
    masked = torch.where(to_mask, torch.full_like(idx, mask_id), idx)  # (B, T)
    masked = torch.where(to_random, random_tokens, masked)
    return masked, targets


def continuation_table(tokenizer: TokenizerLike) -> torch.Tensor:
    """(V,) bool: True for vocabulary entries that continue the previous word.

    WordPiece marks continuations with a ``##`` prefix; byte-level BPE marks word *starts*
    with ``Ġ`` (a space), so there every piece without it continues a word. Used to derive
    word ids from bare token ids for whole-word masking.
    """
    backend = getattr(tokenizer, "backend", None)
    if backend is None or not hasattr(backend, "get_vocab"):
        raise ValueError("whole-word masking from ids needs tokenizer.backend.get_vocab()")
    vocab: dict[str, int] = backend.get_vocab()
    table = torch.zeros(int(tokenizer.vocab_size), dtype=torch.bool)  # (V,)
    if getattr(tokenizer, "kind", "wordpiece") == "wordpiece":
        ids = [i for tok, i in vocab.items() if tok.startswith("##") and i < table.numel()]
    else:
        special = set(getattr(tokenizer, "special_ids", ()))
        ids = [i for tok, i in vocab.items()
               if not tok.startswith("\u0120") and i not in special and i < table.numel()]
    if ids:
        table[torch.tensor(ids, dtype=torch.long)] = True
    return table


def word_ids_from_pieces(idx: torch.Tensor, is_continuation: torch.Tensor,
                         special_mask: torch.Tensor) -> torch.Tensor:
    """Word index per position (B, T), -1 at specials/padding, from a continuation table."""
    valid = ~special_mask.bool()  # (B, T)
    cont = is_continuation[idx.clamp(0, is_continuation.numel() - 1)]  # (B, T)
    prev_valid = torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], dim=1)  # (B, T)
    starts = valid & (~cont | ~prev_valid)
    index = torch.cumsum(starts.long(), dim=1) - 1  # (B, T)
    return torch.where(valid, index, torch.full_like(index, -1))


class MLMCollator:
    """Masked LM on single texts (RoBERTa-style, no NSP).

    Examples are strings or lists of token ids (without specials). Returns ``idx``,
    ``attention_mask``, ``token_type_ids`` (all zeros, BERT-family tokenizers) and
    ``targets`` (B, T) with -100 at unmasked positions.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, mlm_probability: float = 0.15,
                 mask_frac: float = 0.8, random_frac: float = 0.1, whole_word_mask: bool = False,
                 seed: int | torch.Generator | None = 0, pad_to_multiple_of: int | None = None) -> None:
        if tokenizer.mask_id is None:
            raise ValueError("MLMCollator: the tokenizer has no mask token")
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.mlm_probability, self.mask_frac, self.random_frac = mlm_probability, mask_frac, random_frac
        self.whole_word_mask = whole_word_mask
        self.generator = as_generator(seed)
        self.pad_to_multiple_of = pad_to_multiple_of
        self._cont = continuation_table(tokenizer) if whole_word_mask else None

    def _ids(self, example: str | Sequence[int]) -> list[int]:
        tok = self.tokenizer
        if isinstance(example, str):
            return list(tok.encode(example, max_length=self.max_len).ids)
        body = list(example)[: self.max_len - 2]
        if tok.cls_id is not None and tok.sep_id is not None:
            return [tok.cls_id, *body, tok.sep_id]
        return body

    def __call__(self, examples: Sequence[str | Sequence[int]]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        seqs = [self._ids(e) for e in examples]
        idx = pad_sequences(seqs, tok.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)  # (B, T)
        attention = pad_sequences([[1] * len(s) for s in seqs], 0, length=idx.shape[1])  # (B, T)
        special = torch.isin(idx, torch.tensor(sorted(tok.special_ids), dtype=torch.long)) | (attention == 0)
        word_ids = word_ids_from_pieces(idx, self._cont, special) if self._cont is not None else None
        masked, targets = mask_tokens(
            idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size, special_ids=tok.special_ids,
            special_mask=special, attention_mask=attention, mlm_probability=self.mlm_probability,
            mask_frac=self.mask_frac, random_frac=self.random_frac, generator=self.generator,
            word_ids=word_ids)
        batch = {"idx": masked, "attention_mask": attention, "targets": targets}
        if getattr(tok, "kind", "wordpiece") == "wordpiece":
            batch["token_type_ids"] = torch.zeros_like(idx)
        return batch


# ---------------------------------------------------------------------------------------
# Next-sentence prediction
# ---------------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc inc ltd co corp no vol fig e.g i.e cf approx mt ft".split()
)
_INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")  # "j", "j.r.r"
_BOUNDARY = re.compile(r"[.!?]+[\"'\u2019\u201d)\]]*\s+")


def split_sentences(text: str) -> list[str]:
    """Rule-based sentence splitter.

    A boundary is one or more of ``.!?`` (optionally followed by closing quotes or
    brackets), then whitespace, then a capital letter, a digit, or an opening quote or
    bracket. Common abbreviations (``Mr.``, ``e.g.``) and initials (``J. R. R.``) do not
    end a sentence. Newlines inside ``text`` are treated as spaces.
    """
    text = " ".join(text.split())
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        nxt = text[m.end(): m.end() + 2]
        if not nxt or not (nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in "\"'\u2018\u201c(["):
            continue
        before = text[start: m.start()].split()
        last = before[-1].lower().rstrip(".") if before else ""
        if text[m.start()] == "." and (last in _ABBREVIATIONS or _INITIALS.fullmatch(last)):
            continue
        sentences.append(text[start: m.end()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def documents_from_text(
    text: str,
    *,
    doc_split: Literal["line", "blank_line", "none"] = "blank_line",
    sentence_split: Literal["rule", "line"] = "rule",
) -> list[list[str]]:
    """Split raw text into documents of sentences for :func:`create_nsp_examples`.

    ``doc_split``: one document per line (``rt_snippets.txt``), per block of lines
    separated by blank lines (TinyShakespeare's speeches), or the whole text.
    ``sentence_split``: rule-based (:func:`split_sentences`) or one sentence per line.
    Empty documents are dropped.
    """
    if doc_split == "line":
        blocks = text.splitlines()
    elif doc_split == "blank_line":
        blocks = re.split(r"\n\s*\n", text)
    elif doc_split == "none":
        blocks = [text]
    else:
        raise ValueError(f"doc_split: expected 'line', 'blank_line' or 'none', got {doc_split!r}")
    docs: list[list[str]] = []
    for block in blocks:
        if sentence_split == "rule":
            sents = split_sentences(block)
        elif sentence_split == "line":
            sents = [s.strip() for s in block.splitlines() if s.strip()]
        else:
            raise ValueError(f"sentence_split: expected 'rule' or 'line', got {sentence_split!r}")
        if sents:
            docs.append(sents)
    return docs


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer: TokenizerLike) -> list[list[list[int]]]:
    """Token ids (no special tokens) of every sentence of every document."""
    flat = [s for doc in documents for s in doc]
    if hasattr(tokenizer, "encode_batch"):
        ids = tokenizer.encode_batch(flat, add_special_tokens=False, padding=None).ids if flat else []
    else:
        ids = [tokenizer.encode(s, add_special_tokens=False).ids for s in flat]
    out: list[list[list[int]]] = []
    k = 0
    for doc in documents:
        sents = [list(x) for x in ids[k: k + len(doc)] if len(x)]
        k += len(doc)
        if sents:
            out.append(sents)
    return out


@dataclass(frozen=True)
class PairExample:
    """One NSP instance: segment A, segment B, and whether B is a random segment."""

    a_ids: list[int]
    b_ids: list[int]
    is_random_next: bool


def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: np.random.Generator) -> None:
    """Trim the longer segment, one token at a time from a random end, until both fit."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def create_nsp_examples(
    documents: Sequence[Sequence[Sequence[int]]],
    max_len: int,
    *,
    short_seq_prob: float = 0.1,
    nsp_prob: float = 0.5,
    rng: int | np.random.Generator | None = None,
    num_special_tokens: int = 3,
    dupe_factor: int = 1,
    single_sentence: Literal["skip", "random"] = "skip",
    shuffle: bool = True,
) -> list[PairExample]:
    """Build BERT next-sentence-prediction pairs (Devlin et al. 2019, section 3.1 / A.2).

    ``documents``: document -> sentences -> token ids (no specials). For each document,
    sentences accumulate into a chunk until it holds ``max_len - num_special_tokens``
    tokens (with probability ``short_seq_prob`` a shorter random target length is used, so
    the model also sees short inputs). A random prefix of the chunk's sentences becomes A.
    With probability ``nsp_prob`` B is a run of sentences from a random *other* document
    (``is_random_next=True``) and the chunk's unused sentences are put back to be read
    again; otherwise B is the rest of the chunk, the true continuation. Pairs longer than
    the budget lose tokens from the longer side, at a random end.

    A chunk holding a single sentence has no true continuation inside it. When more
    sentences follow in the document, the next one is taken as B; at the end of a
    document the paper always draws a random B, which skews the label balance on corpora
    of short documents. ``single_sentence="skip"`` (default) drops such a chunk instead,
    so that the share of random pairs stays ``nsp_prob``; ``"random"`` is the paper's rule.
    """
    if max_len - num_special_tokens < 2:
        raise ValueError(f"max_len={max_len} leaves no room for two segments")
    if single_sentence not in ("skip", "random"):
        raise ValueError(f"single_sentence: expected 'skip' or 'random', got {single_sentence!r}")
    rng = as_rng(rng)
    docs = [[list(s) for s in d if len(s) > 0] for d in documents]
    docs = [d for d in docs if d]
    if len(docs) < 2:
        raise ValueError("create_nsp_examples needs at least two non-empty documents")
    max_tokens = max_len - num_special_tokens
    examples: list[PairExample] = []

    for _ in range(dupe_factor):
        for d, doc in enumerate(docs):
            target = max_tokens
            if rng.random() < short_seq_prob:
                target = int(rng.integers(2, max_tokens + 1))
            chunk: list[list[int]] = []
            length = 0
            i = 0
            while i < len(doc):
                chunk.append(doc[i])
                length += len(doc[i])
                if i == len(doc) - 1 or length >= target:
                    if len(chunk) == 1 and i == len(doc) - 1 and single_sentence == "skip":
                        # No true continuation exists; decide nothing so the labels stay balanced.
                        chunk, length = [], 0
                        i += 1
                        continue
                    a_end = 1 if len(chunk) < 2 else int(rng.integers(1, len(chunk)))
                    a = [t for s in chunk[:a_end] for t in s]
                    random_next = bool(rng.random() < nsp_prob)
                    b: list[int] | None = None
                    if not random_next and len(chunk) == 1:
                        if i + 1 < len(doc):
                            i += 1  # the next sentence is B; consume it
                            b = list(doc[i])
                        else:  # single_sentence == "random": the paper's rule
                            random_next = True
                    if random_next:
                        target_b = max(1, target - len(a))
                        r = d
                        for _try in range(10):
                            r = int(rng.integers(0, len(docs)))
                            if r != d:
                                break
                        if r == d:
                            r = (d + 1) % len(docs)
                        other = docs[r]
                        start = int(rng.integers(0, len(other)))
                        b = []
                        for s in other[start:]:
                            b.extend(s)
                            if len(b) >= target_b:
                                break
                        i -= len(chunk) - a_end  # put the unused sentences back
                    elif b is None:
                        b = [t for s in chunk[a_end:] for t in s]
                    _truncate_pair(a, b, max_tokens, rng)
                    if a and b:
                        examples.append(PairExample(a, b, random_next))
                    chunk, length = [], 0
                i += 1
    if shuffle:
        order = rng.permutation(len(examples))
        examples = [examples[j] for j in order]
    return examples


class BertPretrainCollator:
    """BERT pre-training batches (MLM + NSP) from :class:`PairExample` instances.

    Builds ``[CLS] A [SEP] B [SEP]`` with ``token_type_ids`` 0 on ``[CLS] A [SEP]`` and 1
    on ``B [SEP]``, pads to the longest row, then masks with :func:`mask_tokens`.
    Returns ``idx``, ``token_type_ids``, ``attention_mask`` (B, T), ``targets`` (B, T) MLM
    targets and ``next_sentence_label`` (B,): 0 = B follows A, 1 = B is random (the
    convention of the original BERT checkpoints).

    The collator owns a seeded ``torch.Generator``; with several DataLoader workers pass
    ``worker_init_fn`` that reseeds ``collator.generator`` per worker, or each worker
    repeats the same masks.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, mlm_probability: float = 0.15,
                 mask_frac: float = 0.8, random_frac: float = 0.1, whole_word_mask: bool = False,
                 seed: int | torch.Generator | None = 0, pad_to_multiple_of: int | None = None) -> None:
        for name in ("cls_id", "sep_id", "mask_id"):
            if getattr(tokenizer, name, None) is None:
                raise ValueError(f"BertPretrainCollator: the tokenizer has no {name.removesuffix('_id')} token")
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.mlm_probability, self.mask_frac, self.random_frac = mlm_probability, mask_frac, random_frac
        self.generator = as_generator(seed)
        self.pad_to_multiple_of = pad_to_multiple_of
        self._cont = continuation_table(tokenizer) if whole_word_mask else None

    def __call__(self, examples: Sequence[PairExample]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        cls_id, sep_id = int(tok.cls_id), int(tok.sep_id)  # type: ignore[arg-type]
        seqs: list[list[int]] = []
        types: list[list[int]] = []
        specials: list[list[int]] = []
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))
        for ex in examples:
            a, b = list(ex.a_ids), list(ex.b_ids)
            _truncate_pair(a, b, self.max_len - 3, rng)
            seqs.append([cls_id, *a, sep_id, *b, sep_id])
            types.append([0] * (len(a) + 2) + [1] * (len(b) + 1))
            specials.append([1] + [0] * len(a) + [1] + [0] * len(b) + [1])
        idx = pad_sequences(seqs, tok.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)  # (B, T)
        T = idx.shape[1]
        token_type_ids = pad_sequences(types, 0, length=T)  # (B, T)
        attention = pad_sequences([[1] * len(s) for s in seqs], 0, length=T)  # (B, T)
        special = pad_sequences(specials, 1, length=T).bool()  # (B, T), padding counts as special
        word_ids = word_ids_from_pieces(idx, self._cont, special) if self._cont is not None else None
        masked, targets = mask_tokens(
            idx, mask_id=int(tok.mask_id), vocab_size=tok.vocab_size,  # type: ignore[arg-type]
            special_ids=tok.special_ids, special_mask=special, attention_mask=attention,
            mlm_probability=self.mlm_probability, mask_frac=self.mask_frac,
            random_frac=self.random_frac, generator=self.generator, word_ids=word_ids)
        nsp = torch.tensor([int(ex.is_random_next) for ex in examples], dtype=torch.long)  # (B,)
        return {"idx": masked, "token_type_ids": token_type_ids, "attention_mask": attention,
                "targets": targets, "next_sentence_label": nsp}


# ---------------------------------------------------------------------------------------
# Causal language modelling
# ---------------------------------------------------------------------------------------


def join_documents(documents: Iterable[Sequence[int]], eos_id: int, *, dtype: Any = np.int64) -> np.ndarray:
    """One 1-D token stream: every document followed by the end-of-text token."""
    parts: list[np.ndarray] = []
    eos = np.array([eos_id], dtype=dtype)
    for doc in documents:
        parts.append(np.asarray(doc, dtype=dtype))
        parts.append(eos)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


class PackedBlocks(Dataset):
    """Fixed-length causal-LM blocks read from a 1-D token stream.

    ``tokens`` is anything sliceable with ``len`` holding token ids: a numpy array, an
    ``np.memmap`` or a :class:`gptbert.data.cache.TokenCache` (nothing is loaded up front).
    Item ``i`` reads ``block_size + 1`` tokens and returns ``{"idx": block[:-1],
    "targets": block[1:]}``, both (block_size,) long, so the default collate gives (B, T).

    ``mode="sequential"``: block ``i`` starts at ``i * stride`` (``stride`` defaults to
    ``block_size``; consecutive blocks share one token, so every token but the first is a
    target exactly once). ``mode="random"``: ``num_samples`` blocks (default: as many as
    sequential mode has) at uniformly drawn offsets, fixed by ``seed`` and redrawn by
    :meth:`set_epoch`.
    """

    def __init__(self, tokens: Any, block_size: int, *, mode: Literal["sequential", "random"] = "sequential",
                 stride: int | None = None, num_samples: int | None = None, seed: int = 0) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if mode not in ("sequential", "random"):
            raise ValueError(f"mode: expected 'sequential' or 'random', got {mode!r}")
        n = len(tokens)
        if n < block_size + 1:
            raise ValueError(f"the token stream has {n} tokens; a block needs {block_size + 1}")
        self.tokens = tokens
        self.block_size = int(block_size)
        self.mode = mode
        self.stride = int(stride or block_size)
        self.seed = int(seed)
        self._max_start = n - (block_size + 1)  # inclusive
        self._n_sequential = self._max_start // self.stride + 1
        self.num_samples = int(num_samples) if num_samples is not None else self._n_sequential
        self._offsets: np.ndarray | None = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Redraw the random offsets (random mode); a no-op in sequential mode."""
        if self.mode == "random":
            rng = np.random.default_rng([self.seed, int(epoch)])
            self._offsets = rng.integers(0, self._max_start + 1, size=self.num_samples, dtype=np.int64)

    def __len__(self) -> int:
        return self.num_samples if self.mode == "random" else self._n_sequential

    def offset(self, i: int) -> int:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return int(self._offsets[i]) if self._offsets is not None else i * self.stride

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        start = self.offset(i)
        block = np.asarray(self.tokens[start: start + self.block_size + 1]).astype(np.int64)  # (T+1,)
        block_t = torch.from_numpy(block)  # (T+1,)
        return {"idx": block_t[:-1], "targets": block_t[1:]}  # (T,), (T,)


def pack_blocks(token_stream: Any, block_size: int, *, eos_id: int | None = None,
                mode: Literal["sequential", "random"] = "sequential", stride: int | None = None,
                num_samples: int | None = None, seed: int = 0) -> PackedBlocks:
    """Causal-LM blocks of ``block_size + 1`` tokens (``idx = block[:-1]``, ``targets = block[1:]``).

    ``token_stream`` is either a 1-D token stream (numpy array / memmap / TokenCache, read
    lazily) or a sequence of documents (lists of ids), which are joined with ``eos_id``.
    """
    if isinstance(token_stream, np.ndarray) or hasattr(token_stream, "read"):
        stream = token_stream
        if isinstance(stream, np.ndarray) and stream.ndim != 1:
            raise ValueError(f"token stream must be 1-D, got shape {stream.shape}")
    else:
        docs = list(token_stream)
        if docs and isinstance(docs[0], (int, np.integer)):
            stream = np.asarray(docs, dtype=np.int64)
        else:
            if eos_id is None:
                raise ValueError("pack_blocks: eos_id is needed to join documents")
            stream = join_documents(docs, eos_id)
    return PackedBlocks(stream, block_size, mode=mode, stride=stride, num_samples=num_samples, seed=seed)


class CausalLMCollator:
    """One example per row for causal LM (GPT), padded.

    Each example (text or ids without specials) becomes ``[bos] ids [eos]`` (BOS only with
    ``add_bos`` and when the tokenizer has one), cut to ``max_len + 1`` tokens; then
    ``idx = seq[:-1]`` and ``targets = seq[1:]``, so ``targets[t]`` is the token after
    ``idx[t]``. Padding (``padding_side``) has ``attention_mask`` 0 and target -100.
    A sequence of one token is preceded by the end-of-text token so it still has a target.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, add_bos: bool = False, add_eos: bool = True,
                 padding_side: Literal["right", "left"] = "right", pad_to_multiple_of: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.add_bos, self.add_eos = add_bos, add_eos
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of
        self.eos_id = eos_or_sep(tokenizer)

    def sequence(self, example: str | Sequence[int]) -> list[int]:
        tok = self.tokenizer
        ids = list(tok.encode(example, add_special_tokens=False).ids) if isinstance(example, str) else list(example)
        seq = ([tok.bos_id] if self.add_bos and tok.bos_id is not None else []) + ids
        if self.add_eos:
            seq.append(self.eos_id)
        if len(seq) < 2:
            seq = [self.eos_id] + seq
        return seq[: self.max_len + 1]

    def __call__(self, examples: Sequence[str | Sequence[int]]) -> dict[str, torch.Tensor]:
        seqs = [self.sequence(e) for e in examples]
        kw = dict(padding_side=self.padding_side, pad_to_multiple_of=self.pad_to_multiple_of)
        idx = pad_sequences([s[:-1] for s in seqs], self.tokenizer.pad_id, **kw)  # (B, T)
        T = idx.shape[1]
        targets = pad_sequences([s[1:] for s in seqs], IGNORE_INDEX, length=T, **kw)  # (B, T)
        attention = pad_sequences([[1] * (len(s) - 1) for s in seqs], 0, length=T, **kw)  # (B, T)
        return {"idx": idx, "targets": targets, "attention_mask": attention}


# ---------------------------------------------------------------------------------------
# ELMo: bidirectional LM targets and character ids
# ---------------------------------------------------------------------------------------

CHAR_PAD = 0
"""Padding inside a word and for padding tokens."""
CHAR_BOW = 1
"""Beginning of word."""
CHAR_EOW = 2
"""End of word."""
CHAR_BOS = 3
"""The only character of a sentence-start token ([CLS] / BOS)."""
CHAR_EOS = 4
"""The only character of a sentence-end token ([SEP] / EOS)."""
CHAR_SPECIAL = 5
"""The only character of any other special token ([MASK], ...)."""
CHAR_BYTE_OFFSET = 6
"""Byte ``b`` of a token's UTF-8 text has character id ``b + 6``."""
CHAR_VOCAB_SIZE = 256 + CHAR_BYTE_OFFSET  # 262


def word_char_ids(word: str | int, max_word_chars: int = 50) -> list[int]:
    """Character ids of one token: ``[BOW, byte+6 ..., EOW, PAD ...]`` of length ``max_word_chars``.

    ``word`` is the token's text, or one of ``CHAR_BOS``/``CHAR_EOS``/``CHAR_SPECIAL`` for
    a special token. Texts longer than ``max_word_chars - 2`` bytes are cut.
    """
    if max_word_chars < 3:
        raise ValueError("max_word_chars must be >= 3")
    if isinstance(word, int):
        body = [word]
    else:
        body = [b + CHAR_BYTE_OFFSET for b in word.encode("utf-8")[: max_word_chars - 2]]
    row = [CHAR_BOW, *body, CHAR_EOW]
    return row + [CHAR_PAD] * (max_word_chars - len(row))


def char_ids_for_words(words: Sequence[str | int], max_word_chars: int = 50) -> torch.Tensor:
    """(N, max_word_chars) character ids of a list of token texts."""
    if not words:
        return torch.zeros(0, max_word_chars, dtype=torch.long)
    return torch.tensor([word_char_ids(w, max_word_chars) for w in words], dtype=torch.long)


def token_texts(text: str, ids: Sequence[int], offsets: Sequence[tuple[int, int]],
                special_tokens_mask: Sequence[int], tokenizer: TokenizerLike) -> list[str | int]:
    """Surface text of every token (from the offsets), or a char marker for special tokens."""
    starts = {tokenizer.cls_id, tokenizer.bos_id} - {None}
    ends = {tokenizer.sep_id, tokenizer.eos_id} - {None}
    out: list[str | int] = []
    for tid, (s, e), special in zip(ids, offsets, special_tokens_mask):
        if special:
            out.append(CHAR_BOS if tid in starts else CHAR_EOS if tid in ends else CHAR_SPECIAL)
        else:
            out.append(text[s:e] if e > s else CHAR_SPECIAL)
    return out


class ElmoLMCollator:
    """Bidirectional LM batches for ELMo-style models.

    Each text is encoded with the tokenizer's special tokens ([CLS] ... [SEP] play the role
    of ELMo's <S> ... </S>) and cut to ``max_len``. Returns:

    * ``idx`` (B, T), ``attention_mask`` (B, T);
    * ``targets`` (B, T, 2): ``[..., 0]`` forward target (the next token), ``[..., 1]``
      backward target (the previous token); -100 where there is none (first/last token,
      padding);
    * ``char_ids`` (B, T, max_word_chars): per-token character ids (see
      :func:`word_char_ids`, vocabulary of :data:`CHAR_VOCAB_SIZE` = 262); all zeros at padding.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, max_word_chars: int = 50,
                 add_special_tokens: bool = True, pad_to_multiple_of: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.max_word_chars = int(max_word_chars)
        self.add_special_tokens = add_special_tokens
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, examples: Sequence[str]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        seqs: list[list[int]] = []
        chars: list[torch.Tensor] = []
        for text in examples:
            enc = tok.encode(text, add_special_tokens=self.add_special_tokens, max_length=self.max_len)
            ids = list(enc.ids)
            seqs.append(ids)
            texts = token_texts(text, ids, enc.offsets, enc.special_tokens_mask, tok)
            chars.append(char_ids_for_words(texts, self.max_word_chars))  # (n, C)
        idx = pad_sequences(seqs, tok.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)  # (B, T)
        B, T = idx.shape
        attention = pad_sequences([[1] * len(s) for s in seqs], 0, length=T)  # (B, T)
        fwd = pad_sequences([s[1:] + [IGNORE_INDEX] if s else [] for s in seqs], IGNORE_INDEX, length=T)  # (B, T)
        bwd = pad_sequences([[IGNORE_INDEX] + s[:-1] if s else [] for s in seqs], IGNORE_INDEX, length=T)  # (B, T)
        char_ids = torch.zeros(B, T, self.max_word_chars, dtype=torch.long)  # (B, T, C)
        for i, c in enumerate(chars):
            char_ids[i, : c.shape[0]] = c
        return {"idx": idx, "attention_mask": attention, "targets": torch.stack([fwd, bwd], dim=-1),
                "char_ids": char_ids}
