"""Data-set profile on real files: counts, balance, lengths, coverage, duplicates, pairs."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptbert.data.profile import DatasetProfile, format_profile, percentile, profile_dataset, profile_task_data
from gptbert.data.readers import read_task_file
from gptbert.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> Tokenizer:
    return Tokenizer.load(minilm_dir)


def test_sst2_dev_with_minilm(shared_data: Path, minilm: Tokenizer) -> None:
    data = read_task_file(shared_data / "sst2" / "dev.tsv")
    prof = profile_task_data(data, minilm)
    assert isinstance(prof, DatasetProfile)
    assert prof.n_examples == 872 and prof.n_bad_rows == 0
    assert prof.label_counts == {"1": 444, "0": 428}
    assert prof.majority_label == "1" and prof.majority_share == pytest.approx(444 / 872)
    assert prof.imbalance_ratio == pytest.approx(444 / 428)
    p, q = 444 / 872, 428 / 872
    assert prof.label_entropy == pytest.approx(-(p * math.log(p) + q * math.log(q)) / math.log(2))
    # Lengths are what the model sees: [CLS] text [SEP].
    lengths = sorted(len(minilm.encode(t).ids) for t in data.texts)
    assert prof.length.unit == "tokens"
    assert prof.length.max == lengths[-1] and prof.length.min == lengths[0]
    assert prof.length.p50 == percentile(lengths, 50)
    assert prof.length.over[64] == sum(n > 64 for n in lengths) / 872
    assert prof.unk_rate == 0.0 and 0.9 < (prof.word_coverage or 0) <= 1.0
    assert (prof.tokens_per_word or 0) >= 1.0
    assert not prof.has_pairs and prof.pair_presence == 0.0


def test_banking77_train_without_tokenizer(shared_data: Path) -> None:
    data = read_task_file(shared_data / "banking77" / "train.tsv", skip_bad_rows=True)
    prof = profile_task_data(data)
    counts = Counter(data.labels)
    assert prof.n_bad_rows == 13 and prof.n_examples == 9003 and prof.n_labels == 77
    assert prof.imbalance_ratio == pytest.approx(max(counts.values()) / min(counts.values()))
    assert list(prof.label_counts.values()) == sorted(counts.values(), reverse=True)
    assert prof.length.unit == "words"
    assert prof.length.max == max(len(t.split()) for t in data.texts)
    assert prof.unk_rate is None and prof.tokenizer is None
    assert 0.95 < (prof.label_entropy or 0) <= 1.0


def test_sst2_train_duplicates(shared_data: Path) -> None:
    data = read_task_file(shared_data / "sst2" / "train.tsv")
    prof = profile_task_data(data)
    keys = [" ".join(t.lower().split()) for t in data.texts]
    assert prof.n_duplicates == len(keys) - len(set(keys))
    assert prof.duplicate_rate == pytest.approx(prof.n_duplicates / 67349)
    by_key: dict[str, set[str]] = {}
    for k, lab in zip(keys, data.labels or []):
        by_key.setdefault(k, set()).add(lab)
    assert prof.conflicting_duplicates == sum(len(v) > 1 for v in by_key.values())


def test_unknown_tokens_and_pairs(shared_data: Path, minilm: Tokenizer) -> None:
    texts = [ln.split("\t")[0] for ln in (shared_data / "snips" / "dev.tsv").read_text(encoding="utf-8")
             .splitlines()[1:41]]
    pairs = [t + " \U0001F600" for t in texts[::-1]]  # an emoji MiniLM does not know
    prof = profile_dataset(texts, pairs=pairs, tokenizer=minilm)
    assert prof.has_pairs and prof.pair_presence == 1.0
    assert prof.examples_with_unk == 1.0 and 0 < (prof.unk_rate or 0) < 0.2
    expected = sorted(len(minilm.encode(a, b).ids) for a, b in zip(texts, pairs))
    assert prof.length.max == expected[-1] and prof.length.p50 == percentile(expected, 50)
    half = profile_dataset(texts[:4], pairs=["x", "", "y", ""])
    assert half.pair_presence == 0.5


def test_unlabelled_and_serialisation(shared_data: Path) -> None:
    lines = (shared_data / "sst2" / "rt_snippets.txt").read_text(encoding="utf-8").splitlines()[:500]
    prof = profile_dataset(lines, source="rt_snippets.txt")
    assert not prof.has_labels and prof.n_labels == 0 and prof.majority_share is None
    d = json.loads(json.dumps(prof.to_dict()))
    assert d["n_examples"] == 500 and d["length"]["unit"] == "words" and "128" in d["length"]["over"]
    table = format_profile(prof)
    assert "examples" in table and "500" in table and "labels" in table


def test_format_profile_lists_labels(shared_data: Path, minilm: Tokenizer) -> None:
    prof = profile_task_data(read_task_file(shared_data / "snips" / "dev.tsv"), minilm)
    text = format_profile(prof)
    assert "label distribution:" in text and "PlayMusic" in text and "word coverage" in text


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.integers(0, 1000), min_size=1, max_size=50), q=st.floats(0, 100))
def test_percentile_matches_numpy(values: list[int], q: float) -> None:
    np = pytest.importorskip("numpy")
    ordered = sorted(values)
    assert percentile(ordered, q) == pytest.approx(float(np.percentile(ordered, q)))
    assert ordered[0] <= percentile(ordered, q) <= ordered[-1]
