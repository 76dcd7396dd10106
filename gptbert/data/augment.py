"""Label-preserving text augmentation (EDA-style, seeded).

Word-level operations in the spirit of "Easy Data Augmentation" (Wei & Zou, 2019), with
corpus words instead of WordNet synonyms, plus contextual substitution with a masked LM:

* :func:`random_deletion` - drop each word with probability ``p`` (at least one word stays);
* :func:`random_swap` - swap two random words, ``n`` times;
* :func:`random_insertion` - insert ``n`` words drawn from a corpus vocabulary
  (:func:`build_vocabulary`) at random places;
* :func:`contextual_substitute` - replace words by what a masked LM predicts in their
  place; the LM is any ``fill_fn(masked_text) -> [(token, prob), ...]`` (see
  :func:`mlm_fill_fn` for one built on a gptbert MLM model).

:func:`augment_dataset` applies them to labelled examples and returns new examples that
carry the original labels. Texts are split on whitespace and re-joined with single spaces.
Every function takes a ``numpy.random.Generator`` (or a seed); none uses global RNG state.

The command ``gptbert data augment`` (``gptbert.cli.data``) writes the result with
:func:`gptbert.data.writers.write_task_file`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

FillFn = Callable[[str], Sequence[tuple[str, float]]]
"""``fill_fn(masked_text) -> [(token, probability), ...]`` for the single mask in the text."""

METHODS = ("delete", "swap", "insert", "contextual")

_DEFAULT_STOPWORDS = frozenset(
    "a an the and or but if of at by for with about to from in on is are was were be been being it its "
    "this that these those i me my we our you your he him his she her they them their as so than too very "
    "s t can will just do does did not no nor".split()
)


def _rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else int(rng))


def _words(text: str | Sequence[str]) -> list[str]:
    return text.split() if isinstance(text, str) else list(text)


# ---------------------------------------------------------------------------------------
# EDA operations (on word lists)
# ---------------------------------------------------------------------------------------


def random_deletion(words: Sequence[str], p: float, rng: int | np.random.Generator | None = None) -> list[str]:
    """Drop each word independently with probability ``p``; one random word survives if all would go."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    rng = _rng(rng)
    words = list(words)
    if len(words) <= 1:
        return words
    keep = rng.random(len(words)) >= p
    if not keep.any():
        return [words[int(rng.integers(0, len(words)))]]
    return [w for w, k in zip(words, keep) if k]


def random_swap(words: Sequence[str], n: int, rng: int | np.random.Generator | None = None) -> list[str]:
    """Swap the words at two distinct random positions, ``n`` times."""
    rng = _rng(rng)
    words = list(words)
    if len(words) < 2:
        return words
    for _ in range(max(0, int(n))):
        i, j = rng.choice(len(words), size=2, replace=False)
        words[i], words[j] = words[j], words[i]
    return words


def random_insertion(words: Sequence[str], n: int, rng: int | np.random.Generator | None = None, *,
                     vocabulary: Sequence[str], weights: Sequence[float] | None = None) -> list[str]:
    """Insert ``n`` words drawn from ``vocabulary`` (optionally weighted) at random positions."""
    if not vocabulary:
        raise ValueError("random_insertion needs a non-empty vocabulary (see build_vocabulary)")
    rng = _rng(rng)
    words = list(words)
    probs = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        probs = w / w.sum()
    for _ in range(max(0, int(n))):
        new = vocabulary[int(rng.choice(len(vocabulary), p=probs))]
        words.insert(int(rng.integers(0, len(words) + 1)), new)
    return words


def build_vocabulary(texts: Iterable[str], *, min_count: int = 2, max_size: int | None = 20000,
                     lowercase: bool = True, stopwords: Iterable[str] | None = _DEFAULT_STOPWORDS,
                     alphabetic_only: bool = True) -> list[str]:
    """Words of a corpus to insert: seen ``min_count`` times, most frequent first (ties by
    word), stop words and (by default) non-alphabetic tokens left out."""
    counts: Counter[str] = Counter()
    for text in texts:
        for w in text.split():
            counts[w.lower() if lowercase else w] += 1
    stop = {s.lower() for s in stopwords} if stopwords else set()
    items = [(w, c) for w, c in counts.items()
             if c >= min_count and w.lower() not in stop and (not alphabetic_only or w.isalpha())]
    items.sort(key=lambda wc: (-wc[1], wc[0]))
    if max_size is not None:
        items = items[:max_size]
    return [w for w, _ in items]


# ---------------------------------------------------------------------------------------
# Contextual substitution with a masked LM
# ---------------------------------------------------------------------------------------


def _acceptable(candidate: str, original: str) -> bool:
    c = candidate.strip()
    if not c or c.startswith("##") or c.startswith("[") and c.endswith("]"):
        return False
    if c.lower() == original.lower():
        return False
    return any(ch.isalnum() for ch in c)


def contextual_substitute(texts: Sequence[str], fill_fn: FillFn, rate: float = 0.15,
                          rng: int | np.random.Generator | None = None, *, mask_token: str = "[MASK]",
                          top_k: int | None = 10, temperature: float = 1.0,
                          skip_words: Iterable[str] | None = None) -> list[str]:
    """Replace about ``rate`` of each text's words with masked-LM predictions.

    For each text, ``max(1, round(rate * n_words))`` positions are drawn (without
    replacement) and processed left to right: the word is replaced by ``mask_token``, the
    current text is given to ``fill_fn``, and one candidate is sampled from its answer
    (``top_k`` most probable, probabilities renormalised, sharpened by ``temperature``).
    Candidates equal to the original word, WordPiece continuations (``##x``), bracketed
    special tokens and pure punctuation are rejected; if nothing is left the word stays.
    Substitutions are sequential, so later predictions see earlier replacements.

    ``fill_fn`` is supplied by the caller: :func:`mlm_fill_fn` wraps a gptbert MLM model;
    tests may pass any deterministic function.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    rng = _rng(rng)
    skip = {w.lower() for w in (skip_words or ())}
    out: list[str] = []
    for text in texts:
        words = text.split()
        positions = [i for i, w in enumerate(words) if w.lower() not in skip and any(ch.isalnum() for ch in w)]
        if not positions or rate == 0.0:
            out.append(" ".join(words))
            continue
        k = min(len(positions), max(1, int(round(rate * len(words)))))
        chosen = sorted(int(p) for p in rng.choice(positions, size=k, replace=False))
        for pos in chosen:
            original = words[pos]
            masked = " ".join(words[:pos] + [mask_token] + words[pos + 1:])
            cands = [(t, float(p)) for t, p in fill_fn(masked) if _acceptable(t, original) and p > 0]
            cands.sort(key=lambda tp: -tp[1])
            if top_k is not None:
                cands = cands[:top_k]
            if not cands:
                continue
            probs = np.array([p for _, p in cands], dtype=np.float64) ** (1.0 / temperature)
            probs /= probs.sum()
            words[pos] = cands[int(rng.choice(len(cands), p=probs))][0].strip()
        out.append(" ".join(words))
    return out


def mlm_fill_fn(model: Any, tokenizer: Any, *, top_k: int = 20, max_len: int = 128,
                device: str | None = None) -> FillFn:
    """A ``fill_fn`` backed by a masked LM: ``model(idx=..., attention_mask=..., token_type_ids=...)``
    returning ``(logits, loss)`` with ``logits`` (1, T, V) (gptbert's ``head="mlm"`` models).

    The masked word becomes a single mask token; the ``top_k`` most probable whole-word
    vocabulary entries at that position are returned with their probabilities.
    """
    import torch

    mask_text = tokenizer.backend.id_to_token(tokenizer.mask_id) if tokenizer.mask_id is not None else None
    if mask_text is None:
        raise ValueError("mlm_fill_fn needs a tokenizer with a mask token")

    @torch.no_grad()
    def fill(masked_text: str) -> list[tuple[str, float]]:
        enc = tokenizer.encode(masked_text.replace("[MASK]", mask_text), max_length=max_len)
        idx = torch.tensor([enc.ids], dtype=torch.long, device=device)  # (1, T)
        where = (idx[0] == tokenizer.mask_id).nonzero()
        if where.numel() == 0:
            return []
        batch = {"idx": idx, "attention_mask": torch.ones_like(idx)}
        if getattr(tokenizer, "kind", "wordpiece") == "wordpiece":
            batch["token_type_ids"] = torch.zeros_like(idx)
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        logits, _ = model(**batch)  # (1, T, V)
        if was_training:
            model.train()
        probs = torch.softmax(logits[0, int(where[0, 0])].float(), dim=-1)  # (V,)
        p, ids = probs.topk(min(top_k, probs.numel()))
        return [(tokenizer.decode([int(i)]), float(q)) for q, i in zip(p.tolist(), ids.tolist())]

    return fill


# ---------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------


def augment_text(text: str, method: str, rng: np.random.Generator, *, p_delete: float = 0.1, n_swap: int = 1,
                 n_insert: int = 1, vocabulary: Sequence[str] | None = None, fill_fn: FillFn | None = None,
                 rate: float = 0.15, mask_token: str = "[MASK]") -> str:
    """One augmented version of ``text`` by ``method`` (one of :data:`METHODS`)."""
    words = text.split()
    if method == "delete":
        return " ".join(random_deletion(words, p_delete, rng))
    if method == "swap":
        return " ".join(random_swap(words, n_swap, rng))
    if method == "insert":
        if not vocabulary:
            raise ValueError("method 'insert' needs a vocabulary")
        return " ".join(random_insertion(words, n_insert, rng, vocabulary=vocabulary))
    if method == "contextual":
        if fill_fn is None:
            raise ValueError("method 'contextual' needs a fill_fn (see mlm_fill_fn)")
        return contextual_substitute([text], fill_fn, rate, rng, mask_token=mask_token)[0]
    raise ValueError(f"unknown augmentation method {method!r}; expected one of {', '.join(METHODS)}")


def _get_text(example: Any) -> str:
    if isinstance(example, str):
        return example
    if isinstance(example, Mapping):
        return example["text"]
    return example[0]


def _with_text(example: Any, text: str) -> Any:
    if isinstance(example, str):
        return text
    if isinstance(example, Mapping):
        new = dict(example)
        new["text"] = text
        return new
    return (text, *tuple(example)[1:])


def augment_dataset(task_data: Any, methods: Sequence[str] | str = ("delete", "swap", "insert"), n_aug: int = 1,
                    seed: int = 0, *, vocabulary: Sequence[str] | None = None, fill_fn: FillFn | None = None,
                    p_delete: float = 0.1, n_swap: int = 1, n_insert: int = 1, rate: float = 0.15,
                    mask_token: str = "[MASK]") -> Any:
    """``n_aug`` augmented copies of every example, each with its original label.

    ``task_data``: a :class:`gptbert.data.readers.TaskData` (returns a new ``TaskData`` of
    the augmented examples only, same labels and pairs; the pair text is left alone), or a
    list of ``(text, label, ...)`` tuples / dicts with ``"text"`` (returns a list of the same
    shape). Each copy uses a method drawn uniformly from ``methods``. ``vocabulary`` for
    ``insert`` defaults to :func:`build_vocabulary` over the data's own texts. Output order:
    example by example, copies in order; deterministic given ``seed``.
    """
    methods = [methods] if isinstance(methods, str) else list(methods)
    if not methods:
        raise ValueError("augment_dataset: no methods given")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown augmentation method {m!r}; expected one of {', '.join(METHODS)}")
    if n_aug < 1:
        raise ValueError(f"n_aug must be >= 1, got {n_aug}")
    is_task = hasattr(task_data, "texts") and hasattr(task_data, "subset")
    texts = list(task_data.texts) if is_task else [_get_text(e) for e in task_data]
    if "insert" in methods and vocabulary is None:
        vocabulary = build_vocabulary(texts, min_count=1)
    if "contextual" in methods and fill_fn is None:
        raise ValueError("method 'contextual' needs a fill_fn (see mlm_fill_fn)")
    rng = np.random.default_rng(seed)
    kw = dict(p_delete=p_delete, n_swap=n_swap, n_insert=n_insert, vocabulary=vocabulary, fill_fn=fill_fn,
              rate=rate, mask_token=mask_token)
    new_texts: list[str] = []
    source: list[int] = []
    for i, text in enumerate(texts):
        for _ in range(n_aug):
            method = methods[int(rng.integers(0, len(methods)))]
            new_texts.append(augment_text(text, method, rng, **kw))
            source.append(i)
    if is_task:
        out = task_data.subset(source)
        out.texts = new_texts
        return out
    items = list(task_data)
    return [_with_text(items[i], t) for i, t in zip(source, new_texts)]
