"""EDA-style augmentation on SST-2: seeded, label-preserving, and written back losslessly."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from gptbert.data.augment import (
    augment_dataset,
    build_vocabulary,
    contextual_substitute,
    mlm_fill_fn,
    random_deletion,
    random_insertion,
    random_swap,
)
from gptbert.data.readers import TaskData, read_task_file
from gptbert.data.writers import write_task_file


@pytest.fixture(scope="module")
def sst2(shared_data: Path):
    return read_task_file(shared_data / "sst2" / "train.tsv").subset(range(300))


@pytest.fixture(scope="module")
def vocab(shared_data: Path) -> list[str]:
    lines = (shared_data / "sst2" / "rt_snippets.txt").read_text(encoding="utf-8").splitlines()
    return build_vocabulary(lines, min_count=3)


def test_build_vocabulary(vocab: list[str]) -> None:
    assert 1000 < len(vocab) <= 20000
    assert "film" in vocab[:20] and "the" not in vocab and all(w.isalpha() for w in vocab)
    assert build_vocabulary(["b a b", "c b a"], min_count=2, stopwords=None) == ["b", "a"]


def test_word_operations(sst2) -> None:
    words = sst2.texts[3].split()
    rng = np.random.default_rng(0)
    kept = random_deletion(words, 0.3, rng)
    it = iter(words)
    assert all(w in it for w in kept) and 0 < len(kept) < len(words)  # a subsequence
    assert len(random_deletion(words, 1.0, rng)) == 1
    assert random_deletion(words, 0.0, rng) == words
    swapped = random_swap(words, 2, rng)
    assert Counter(swapped) == Counter(words) and swapped != words
    inserted = random_insertion(words, 3, rng, vocabulary=["zebra", "quokka"])
    assert len(inserted) == len(words) + 3
    assert Counter(inserted) - Counter(words) <= Counter({"zebra": 3, "quokka": 3})
    with pytest.raises(ValueError):
        random_insertion(words, 1, rng, vocabulary=[])


def _fill(masked_text: str) -> list[tuple[str, float]]:
    """A deterministic stand-in for a masked LM: its answer depends only on the text's length,
    and it includes candidates the substitution must reject (a ## piece, a special token,
    punctuation)."""
    n = len(masked_text)
    return [("##ing", 0.5), ("[UNK]", 0.2), ("!", 0.1), ("movie", 0.3 + (n % 3) / 10), ("story", 0.2)]


def test_contextual_substitute_with_a_deterministic_fill_fn(sst2) -> None:
    texts = sst2.texts[:50]
    seen: list[str] = []

    def fill(masked: str) -> list[tuple[str, float]]:
        seen.append(masked)
        return _fill(masked)

    out = contextual_substitute(texts, fill, rate=0.2, rng=1)
    again = contextual_substitute(texts, _fill, rate=0.2, rng=1)
    assert out == again
    assert all(m.count("[MASK]") == 1 for m in seen)
    changed = 0
    for before, after in zip(texts, out):
        b, a = before.split(), after.split()
        assert len(a) == len(b)
        diff = [(x, y) for x, y in zip(b, a) if x != y]
        assert all(y in ("movie", "story") for _, y in diff)
        assert len(diff) <= max(1, round(0.2 * len(b)))
        changed += bool(diff)
    assert changed >= 45
    assert contextual_substitute(texts[:3], _fill, rate=0.0, rng=1) == [" ".join(t.split()) for t in texts[:3]]
    assert contextual_substitute(["only"], lambda m: [("only", 1.0)], rate=1.0, rng=0) == ["only"]


def test_mlm_fill_fn_with_a_stub_model(minilm_dir: Path) -> None:
    import torch

    from gptbert.tokenizer import Tokenizer

    tok = Tokenizer.load(minilm_dir)
    good = tok.token_to_id("good")

    class StubMLM(torch.nn.Module):
        def forward(self, idx, attention_mask=None, token_type_ids=None, targets=None):
            logits = torch.zeros(*idx.shape, tok.vocab_size)  # (B, T, V)
            logits[..., good] = 5.0
            return logits, None

    fill = mlm_fill_fn(StubMLM(), tok, top_k=3)
    cands = fill("a [MASK] movie")
    assert cands[0][0] == "good" and len(cands) == 3 and cands[0][1] > cands[1][1]
    assert contextual_substitute(["a bad movie"], fill, rate=0.34, rng=0)[0].split().count("good") == 1


def test_augment_dataset_is_seeded_and_label_preserving(sst2) -> None:
    aug = augment_dataset(sst2, ["delete", "swap", "insert"], n_aug=3, seed=11)
    same = augment_dataset(sst2, ["delete", "swap", "insert"], n_aug=3, seed=11)
    other = augment_dataset(sst2, ["delete", "swap", "insert"], n_aug=3, seed=12)
    assert len(aug) == 3 * len(sst2)
    assert aug.texts == same.texts and aug.texts != other.texts
    assert aug.labels == [lab for lab in sst2.labels for _ in range(3)]
    assert sum(a != " ".join(sst2.texts[i // 3].split()) for i, a in enumerate(aug.texts)) > 0.7 * len(aug)

    rows = [(t, int(l)) for t, l in zip(sst2.texts[:20], sst2.labels[:20])]
    out = augment_dataset(rows, "swap", n_aug=2, seed=0)
    assert [l for _, l in out] == [l for _, l in rows for _ in range(2)]
    dicts = [{"text": t, "label": l, "id": i} for i, (t, l) in enumerate(rows)]
    out_d = augment_dataset(dicts, ["contextual"], n_aug=1, seed=0, fill_fn=_fill)
    assert [(d["label"], d["id"]) for d in out_d] == [(d["label"], d["id"]) for d in dicts]
    with pytest.raises(ValueError):
        augment_dataset(rows, ["contextual"], seed=0)
    with pytest.raises(ValueError):
        augment_dataset(rows, ["synonyms"], seed=0)


def test_augmented_file_reads_back_unchanged(sst2, tmp_path: Path) -> None:
    """What augmentation writes, read_task_file reads back as it was: quotes included (the TSV writer
    once used CSV quoting, so `he said "hi" twice` came back as `"he said ""hi"" twice"`)."""
    quoted = TaskData(texts=['he said "hi" twice', '"quoted" start', "it's 'single' and \"double\""],
                      labels=["1", "0", "1"])
    for data in (quoted, sst2):
        new = augment_dataset(data, ["delete", "swap", "insert"], n_aug=2, seed=5)
        for name in ("aug.tsv", "aug.jsonl"):
            path = write_task_file(tmp_path / name, data, new)
            back = read_task_file(path)
            assert back.texts == data.texts + new.texts and back.labels == data.labels + new.labels
