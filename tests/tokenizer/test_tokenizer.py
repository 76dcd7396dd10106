"""Tokenizer: MiniLM vocabulary vs transformers, GPT-2-format BPE round trips, options, errors."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptbert.tokenizer import BatchEncoding, Encoding, Tokenizer, TokenizerError

transformers = pytest.importorskip("transformers")


def _column(path: Path, n: int | None = None, start: int = 0) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    texts = [ln.split("\t")[0] for ln in lines if "\t" in ln]
    return texts[start:start + n] if n is not None else texts[start:]


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_bert(minilm_dir: Path):
    return transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))


@pytest.fixture(scope="module")
def minilm_vocab(minilm_dir: Path) -> Tokenizer:
    return Tokenizer.load(minilm_dir / "vocab.txt")


@pytest.fixture(scope="module")
def minilm_json(minilm_dir: Path) -> Tokenizer:
    return Tokenizer.load(minilm_dir / "tokenizer.json")


@pytest.fixture(scope="module")
def real_texts(shared_data: Path) -> list[str]:
    """300 SST-2 phrases and 300 banking77 queries."""
    return _column(shared_data / "sst2" / "train.tsv", 300) + _column(shared_data / "banking77" / "dev.tsv", 300)


@pytest.fixture(scope="module")
def shakespeare(shared_data: Path) -> list[str]:
    return [ln for ln in (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()
            if ln.strip()]


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory: pytest.TempPathFactory, shakespeare: list[str]) -> Path:
    tok = Tokenizer.from_texts(shakespeare[:12000], "bpe", 1200, show_progress=False)
    out = tmp_path_factory.mktemp("bpe") / "tok"
    tok.save(out)
    return out


@pytest.fixture(scope="module")
def bpe(bpe_dir: Path) -> Tokenizer:
    return Tokenizer.load(bpe_dir)


def _gpt2_from_files(vocab: Path, merges: Path):
    kwargs = {"vocab_file": str(vocab), "merges_file": str(merges)}
    if int(transformers.__version__.split(".")[0]) >= 5:
        kwargs.update(vocab=str(vocab), merges=str(merges))  # v5 builds from these names
    return transformers.GPT2TokenizerFast(**kwargs)


# ---------------------------------------------------------------------------------------------
# WordPiece: the real MiniLM vocabulary against BertTokenizerFast
# ---------------------------------------------------------------------------------------------


def test_minilm_special_ids(minilm_vocab: Tokenizer, minilm_json: Tokenizer) -> None:
    for tok in (minilm_vocab, minilm_json):
        assert tok.kind == "wordpiece" and tok.lowercase
        assert tok.vocab_size == 30522
        assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 100, 101, 102, 103)
        assert tok.bos_id is None and tok.eos_id is None
        assert tok.special_ids == frozenset({0, 100, 101, 102, 103})


@pytest.mark.parametrize("which", ["minilm_vocab", "minilm_json"])
def test_minilm_single_texts_match_transformers(which: str, request: pytest.FixtureRequest, hf_bert,
                                                real_texts: list[str]) -> None:
    tok: Tokenizer = request.getfixturevalue(which)
    for text in real_texts:
        ours = tok.encode(text)
        ref = hf_bert(text)
        assert ours.ids == ref["input_ids"], text
        assert ours.type_ids == ref["token_type_ids"]
        assert ours.attention_mask == ref["attention_mask"]


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
def test_minilm_pairs_with_truncation_match_transformers(strategy: str, minilm_vocab: Tokenizer, hf_bert,
                                                         shared_data: Path) -> None:
    # Pair a banking77 query (short) with an SST-2 phrase (often long).
    firsts = _column(shared_data / "banking77" / "dev.tsv", 150)
    seconds = _column(shared_data / "sst2" / "train.tsv", 150, start=1000)
    compared = 0
    for a, b in zip(firsts, seconds):
        try:
            ref = hf_bert(a, b, truncation=strategy, max_length=24)
        except Exception:
            with pytest.raises(TokenizerError, match="truncate"):
                minilm_vocab.encode(a, b, truncation=strategy, max_length=24)
            continue
        ours = minilm_vocab.encode(a, b, truncation=strategy, max_length=24)
        assert ours.ids == ref["input_ids"], (a, b)
        assert ours.type_ids == ref["token_type_ids"]
        assert len(ours.ids) <= 24
        compared += 1
    assert compared > 50


def test_minilm_batch_padding_matches_transformers(minilm_json: Tokenizer, hf_bert, real_texts: list[str]) -> None:
    texts = real_texts[:64]
    for padding in ("longest", "max_length"):
        ours = minilm_json.encode_batch(texts, max_length=20, padding=padding)
        ref = hf_bert(texts, max_length=20, truncation=True, padding=padding)
        assert ours.ids == ref["input_ids"]
        assert ours.type_ids == ref["token_type_ids"]
        assert ours.attention_mask == ref["attention_mask"]
    pairs = real_texts[300:364]
    ours = minilm_json.encode_batch(texts, pairs, max_length=32)
    ref = hf_bert(texts, pairs, max_length=32, truncation=True, padding="longest")
    assert ours.ids == ref["input_ids"] and ours.type_ids == ref["token_type_ids"]


def test_minilm_decode_matches_transformers(minilm_vocab: Tokenizer, hf_bert, real_texts: list[str]) -> None:
    for text in real_texts[:100]:
        ids = minilm_vocab.encode(text).ids
        assert minilm_vocab.decode(ids) == hf_bert.decode(ids, skip_special_tokens=True)


def test_encoding_fields(minilm_vocab: Tokenizer) -> None:
    enc = minilm_vocab.encode("Hello there", "General Kenobi")
    assert isinstance(enc, Encoding)
    n = len(enc.ids)
    assert len(enc.offsets) == len(enc.word_ids) == len(enc.special_tokens_mask) == len(enc.sequence_ids) == n
    assert enc.ids[0] == minilm_vocab.cls_id and enc.ids[-1] == minilm_vocab.sep_id
    assert enc.special_tokens_mask[0] == 1 and enc.word_ids[0] is None
    assert enc.type_ids[-1] == 1 and enc.type_ids[1] == 0
    start, end = enc.offsets[1]
    assert "Hello there"[start:end].lower() == minilm_vocab.id_to_token(enc.ids[1])


def test_vocab_only_folder_guesses_lowercase(minilm_dir: Path, tmp_path: Path, hf_bert) -> None:
    shutil.copy(minilm_dir / "vocab.txt", tmp_path / "vocab.txt")  # no tokenizer_config.json beside it
    tok = Tokenizer.load(tmp_path)
    assert tok.lowercase
    assert tok.encode("The QUICK Brown fox").ids == hf_bert("The QUICK Brown fox")["input_ids"]
    cased = Tokenizer.load(tmp_path, lowercase=False)
    assert not cased.lowercase
    assert cased.encode("QUICK").ids != tok.encode("QUICK").ids


def test_backend_left_unconfigured(minilm_json: Tokenizer) -> None:
    minilm_json.encode_batch(["a b c d e f"] * 3, max_length=4, padding="max_length")
    assert minilm_json.backend.truncation is None and minilm_json.backend.padding is None
    assert len(minilm_json.backend.encode("a b c d e f").ids) == 8


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


def test_padding_side_and_multiple(minilm_vocab: Tokenizer) -> None:
    batch = minilm_vocab.encode_batch(["short", "a somewhat longer text here"], padding_side="left")
    assert isinstance(batch, BatchEncoding)
    assert len(batch.ids[0]) == len(batch.ids[1])
    assert batch.ids[0][0] == minilm_vocab.pad_id and batch.attention_mask[0][0] == 0
    assert batch.ids[0][-1] == minilm_vocab.sep_id and batch.attention_mask[0][-1] == 1
    assert batch.lengths == [3, 7]
    multiple = minilm_vocab.encode_batch(["short", "a somewhat longer text here"], pad_to_multiple_of=8)
    assert {len(r) for r in multiple.ids} == {8}
    ragged = minilm_vocab.encode_batch(["short", "a somewhat longer text here"], padding=None)
    assert [len(r) for r in ragged.ids] == [3, 7]
    with pytest.raises(TokenizerError, match="different lengths"):
        ragged.to_tensors()


@pytest.mark.parametrize("which", ["minilm_vocab", "bpe"])
def test_python_padding_equals_rust_padding(which: str, request: pytest.FixtureRequest,
                                            real_texts: list[str]) -> None:
    # Without offsets we pad in Python; with offsets the backend pads. Both must agree.
    tok: Tokenizer = request.getfixturevalue(which)
    texts, pairs = real_texts[:40], real_texts[-40:]
    for kwargs in (dict(), dict(padding_side="left"), dict(pad_to_multiple_of=8), dict(max_length=16),
                   dict(max_length=24, padding="max_length", padding_side="left"),
                   dict(max_length=8, padding="max_length", truncation="do_not_truncate")):
        for second in (None, pairs):
            fast = tok.encode_batch(texts, second, **kwargs)  # type: ignore[arg-type]
            slow = tok.encode_batch(texts, second, return_offsets=True, **kwargs)  # type: ignore[arg-type]
            assert fast.ids == slow.ids, kwargs
            assert fast.type_ids == slow.type_ids, kwargs
            assert fast.attention_mask == slow.attention_mask, kwargs
            assert slow.offsets is not None and len(slow.offsets) == len(texts)


def test_to_tensors(minilm_vocab: Tokenizer) -> None:
    torch = pytest.importorskip("torch")
    tensors = minilm_vocab.encode_batch(["one", "two three"], ["x", "y"], max_length=8,
                                        padding="max_length").to_tensors()
    assert set(tensors) == {"idx", "token_type_ids", "attention_mask"}
    for t in tensors.values():
        assert t.dtype == torch.long and tuple(t.shape) == (2, 8)


def test_no_truncation_and_errors(minilm_vocab: Tokenizer) -> None:
    text = " ".join(["word"] * 40)
    assert len(minilm_vocab.encode(text, max_length=10, truncation="do_not_truncate").ids) == 42
    assert len(minilm_vocab.encode(text, max_length=10).ids) == 10
    left = minilm_vocab.encode("a b c d e f", max_length=4, truncation_side="left")
    assert minilm_vocab.decode(left.ids) == "e f"
    with pytest.raises(TokenizerError, match="no room"):
        minilm_vocab.encode("hello", "world", max_length=3)
    with pytest.raises(TokenizerError, match="truncation="):
        minilm_vocab.encode("hello", truncation="middle")
    with pytest.raises(TokenizerError, match="needs max_length"):
        minilm_vocab.encode_batch(["a"], padding="max_length")
    with pytest.raises(TokenizerError, match="2 texts but 1 pairs"):
        minilm_vocab.encode_batch(["a", "b"], ["c"])
    with pytest.raises(TokenizerError, match="single str"):
        minilm_vocab.encode_batch("abc")  # type: ignore[arg-type]
    with pytest.raises(TokenizerError, match=r"texts\[1\]"):
        minilm_vocab.encode_batch(["a", 3])  # type: ignore[list-item]


def test_pickle_round_trip(minilm_json: Tokenizer) -> None:
    clone = pickle.loads(pickle.dumps(minilm_json))
    assert clone.encode("pickled tokenizer", max_length=4).ids == minilm_json.encode("pickled tokenizer", max_length=4).ids


# ---------------------------------------------------------------------------------------------
# Byte-level BPE in GPT-2 format
# ---------------------------------------------------------------------------------------------


def test_bpe_saved_files_and_specials(bpe_dir: Path, bpe: Tokenizer) -> None:
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "gptbert_tokenizer.json"):
        assert (bpe_dir / name).is_file(), name
    assert (bpe_dir / "merges.txt").read_text(encoding="utf-8").startswith("#version")
    meta = json.loads((bpe_dir / "gptbert_tokenizer.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "bpe" and meta["lowercase"] is False
    eot = bpe.token_to_id("<|endoftext|>")
    assert eot is not None and bpe.bos_id == bpe.eos_id == bpe.pad_id == eot
    assert bpe.cls_id is None and bpe.mask_id is None
    assert bpe.vocab_size == 1200
    assert bpe.encode("Hello world").ids == bpe.encode("Hello world", add_special_tokens=False).ids


def test_bpe_round_trips_through_gpt2_tokenizer(bpe_dir: Path, bpe: Tokenizer, shakespeare: list[str],
                                                shared_data: Path) -> None:
    from_files = _gpt2_from_files(bpe_dir / "vocab.json", bpe_dir / "merges.txt")
    from_dir = transformers.GPT2TokenizerFast.from_pretrained(str(bpe_dir))
    from_vocab_only = Tokenizer.load(bpe_dir / "vocab.json")
    texts = shakespeare[20000:20200] + _column(shared_data / "sst2" / "dev.tsv", 200)
    texts.append("Ünïcödé, émojis 😀 and tabs\tand  double  spaces")
    for text in texts:
        ids = bpe.encode(text).ids
        assert ids == from_files(text)["input_ids"], text
        assert ids == from_dir(text)["input_ids"], text
        assert ids == from_vocab_only.encode(text).ids
        assert bpe.decode(ids) == text
    assert from_dir.eos_token_id == bpe.eos_id


def test_bpe_left_padding_uses_eos(bpe: Tokenizer) -> None:
    batch = bpe.encode_batch(["To be, or not to be", "Ay"], padding_side="left")
    assert batch.ids[1][0] == bpe.eos_id and batch.attention_mask[1][0] == 0
    assert batch.attention_mask[0] == [1] * len(batch.ids[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=80))
def test_bpe_is_lossless(bpe: Tokenizer, text: str) -> None:
    ids = bpe.encode(text).ids
    assert bpe.decode(ids, skip_special_tokens=False) == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_batch_equals_single(minilm_vocab: Tokenizer, texts: list[str]) -> None:
    batch = minilm_vocab.encode_batch(texts, padding=None)
    assert batch.ids == [minilm_vocab.encode(t).ids for t in texts]


# ---------------------------------------------------------------------------------------------
# WordPiece training from files
# ---------------------------------------------------------------------------------------------


def test_train_wordpiece_from_file_and_reload(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "snippets.txt"
    lines = (shared_data / "sst2" / "rt_snippets.txt").read_text(encoding="utf-8").splitlines()[:4000]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tok = Tokenizer.train([src], "wordpiece", 3000, show_progress=False)
    assert tok.kind == "wordpiece" and tok.lowercase
    assert [tok.id_to_token(i) for i in range(5)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    out = tmp_path / "wp"
    tok.save(out)
    assert (out / "vocab.txt").read_text(encoding="utf-8").splitlines()[:2] == ["[PAD]", "[UNK]"]
    reloaded = Tokenizer.load(out)
    from_vocab = Tokenizer.load(out / "vocab.txt")
    hf = transformers.BertTokenizerFast.from_pretrained(str(out))
    for text in lines[4000:4100] + ["An UNSEEN 字 character"]:
        ids = tok.encode(text, "second part").ids
        assert reloaded.encode(text, "second part").ids == ids
        assert from_vocab.encode(text, "second part").ids == ids
        assert hf(text, "second part")["input_ids"] == ids


def test_train_respects_lowercase_flag(shakespeare: list[str]) -> None:
    cased = Tokenizer.from_texts(shakespeare[:3000], "wordpiece", 800, lowercase=False, show_progress=False)
    assert not cased.lowercase
    assert cased.tokenize("KING") != cased.tokenize("king")
    lower_bpe = Tokenizer.from_texts(shakespeare[:3000], "bpe", 400, lowercase=True, show_progress=False)
    assert lower_bpe.encode("KING").ids == lower_bpe.encode("king").ids


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="no such file"):
        Tokenizer.load(tmp_path / "missing")
    with pytest.raises(TokenizerError, match="no tokenizer files"):
        Tokenizer.load(tmp_path)
    (tmp_path / "vocab.txt").write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"vocab\.txt: .*\[UNK\]"):
        Tokenizer.load(tmp_path)
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, "<|endoftext|>": 2}), encoding="utf-8")
    (gpt / "merges.txt").write_text("#version: 0.2\na b\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"merges\.txt:2: merge 'a' \+ 'b'"):
        Tokenizer.load(gpt)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"fine line\nna\xefve caf\xe9\n")
    with pytest.raises(TokenizerError, match=r"latin1\.txt:2: not UTF-8"):
        Tokenizer.train([bad], "bpe", 300, show_progress=False)
    with pytest.raises(TokenizerError, match="too small"):
        Tokenizer.from_texts(["abc"], "bpe", 100, show_progress=False)
    with pytest.raises(TokenizerError, match="unknown tokenizer kind"):
        Tokenizer.from_texts(["abc"], "unigram", 1000, show_progress=False)
