"""BERT pre-training pairs: sentence splitting, next-sentence-prediction examples, :class:`BertPretrainCollator`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from gptbert.data.objectives.common import TokenizerLike, as_generator, as_rng, pad_sequences
from gptbert.data.objectives.masking import continuation_table, mask_tokens, word_ids_from_pieces


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
