"""Memory-mapped token cache: round trip, shards, staleness, memory, and packing from it."""

from __future__ import annotations

import json
import os
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from gptbert.data.cache import (
    META_NAME,
    TokenCache,
    build_token_cache,
    cache_dir_for,
    cache_is_valid,
    default_cache_root,
    iter_documents,
)
from gptbert.data.objectives import pack_blocks
from gptbert.tokenizer import Tokenizer


@pytest.fixture()
def corpus(tmp_path: Path, shared_data: Path) -> Path:
    """The first 6000 lines of TinyShakespeare, copied so tests may modify it."""
    lines = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    p = tmp_path / "src" / "shakespeare.txt"
    p.parent.mkdir()
    p.write_text("".join(lines[:6000]), encoding="utf-8")
    return p


def _direct(tok: Tokenizer, docs: list[str], eos: int) -> list[int]:
    out: list[int] = []
    for d in docs:
        out.extend(tok.encode(d, add_special_tokens=False).ids)
        out.append(eos)
    return out


def test_round_trip_line_mode_equals_direct_tokenization(tok: Tokenizer, corpus: Path, tmp_path: Path) -> None:
    path = build_token_cache([corpus], tok, tmp_path / "cache", shard_tokens=10_000, batch_size=300)
    cache = TokenCache(path)
    lines = [l for l in corpus.read_text(encoding="utf-8").splitlines() if l.strip()]
    expected = _direct(tok, lines, tok.sep_id)  # BERT vocabularies end documents with [SEP]
    assert len(cache) == len(expected) and cache.num_documents == len(lines)
    assert cache.num_shards == -(-len(expected) // 10_000) > 3
    assert cache.dtype == np.uint16 and cache.vocab_size == tok.vocab_size and cache.eos_id == tok.sep_id
    assert cache[0: len(cache)].tolist() == expected
    # Reads across shard boundaries, single items, negative indices, the clipped end.
    for start in (0, 9_990, 10_000, 29_999, len(cache) - 7):
        assert cache.read(start, 25).tolist() == expected[start: start + 25]
    assert cache[10_000] == expected[10_000] and cache[-1] == expected[-1] == tok.sep_id
    with pytest.raises(IndexError):
        cache[len(cache)]
    meta = json.loads((path / META_NAME).read_text())
    assert meta["num_tokens"] == len(expected) and meta["sources"][0]["size"] == corpus.stat().st_size
    assert sum(s["num_tokens"] for s in meta["shards"]) == len(expected)
    assert not list(tmp_path.glob(".cache.*"))  # no temporary folder left behind


def test_blank_and_file_modes(bpe: Tokenizer, corpus: Path, tmp_path: Path) -> None:
    text = corpus.read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip()]
    c = TokenCache(build_token_cache(corpus, bpe, tmp_path / "blank", mode="blank"))
    assert c.eos_id == bpe.eos_id and c.num_documents == len(blocks)
    assert c[:].tolist() == _direct(bpe, [b.strip("\n") for b in blocks], bpe.eos_id)

    f = TokenCache(build_token_cache(corpus, bpe, tmp_path / "file", mode="file", append_eos=False))
    assert f.num_documents == 1 and f.eos_id is None
    pieces = [t for t, _ in iter_documents([corpus], "file")]
    assert "".join(pieces) == text and len(pieces) > 1  # read in pieces, nothing lost
    assert f[:].tolist() == [i for p in pieces for i in bpe.encode(p, add_special_tokens=False).ids]


def test_reuse_staleness_and_locations(tok: Tokenizer, bpe: Tokenizer, corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    where = cache_dir_for([corpus], tok, root=root)
    assert where == cache_dir_for(corpus, tok, root=root)  # deterministic
    assert where.parent == root / "tokens" and where.name.startswith("shakespeare-")
    assert cache_dir_for(corpus, bpe, root=root) != where  # another tokenizer
    assert cache_dir_for(corpus, tok, root=root, mode="blank") != where  # other settings
    path = build_token_cache(corpus, tok, root=root)
    assert path == where and cache_is_valid(path, corpus, tok)
    shard = path / "shard_00000.bin"
    mtime = shard.stat().st_mtime_ns
    assert build_token_cache(corpus, tok, root=root) == path and shard.stat().st_mtime_ns == mtime  # reused
    n_before = len(TokenCache(path))

    with open(corpus, "a", encoding="utf-8") as f:
        f.write("A brand new line at the end.\n")
    assert not cache_is_valid(path, corpus, tok)
    build_token_cache(corpus, tok, root=root)
    rebuilt = TokenCache(path)
    assert len(rebuilt) == n_before + len(tok.encode("A brand new line at the end.", add_special_tokens=False).ids) + 1
    assert not cache_is_valid(path, corpus, bpe)
    (path / "shard_00000.bin").write_bytes(b"\0\0")  # damaged shard
    assert not cache_is_valid(path, corpus, tok)
    assert cache_is_valid(build_token_cache(corpus, tok, root=root), corpus, tok)

    os.environ["GPTBERT_CACHE"] = str(tmp_path / "env")
    try:
        assert default_cache_root() == tmp_path / "env"
    finally:
        del os.environ["GPTBERT_CACHE"]
    with pytest.raises(FileNotFoundError):
        build_token_cache(tmp_path / "missing.txt", tok, tmp_path / "x")


def test_folder_sources_and_uint32(tok: Tokenizer, corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "b.txt").write_text("".join(lines[:800]), encoding="utf-8")
    (folder / "a.txt").write_text("".join(lines[800:1500]), encoding="utf-8")
    (folder / ".hidden").write_text("never read\n", encoding="utf-8")
    c32 = TokenCache(build_token_cache(folder, tok, tmp_path / "c32", dtype=np.uint32))
    c16 = TokenCache(build_token_cache([folder / "a.txt", folder / "b.txt"], tok, tmp_path / "c16"))
    assert c32.dtype == np.uint32 and (tmp_path / "c32" / "shard_00000.bin").stat().st_size == 4 * len(c32)
    assert c32[:].tolist() == c16[:].tolist()  # folder = its files sorted by name
    with pytest.raises(ValueError):
        build_token_cache(corpus, tok, tmp_path / "c8", dtype=np.uint8)


def test_memory_stays_small(tok: Tokenizer, corpus: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text(corpus.read_text(encoding="utf-8") * 3, encoding="utf-8")  # ~520 kB, ~140k tokens
    peaks = {}
    for src in (corpus, big):
        cache_dir_for(src, tok)  # the tokenizer's fingerprint is computed once and remembered
        tracemalloc.start()
        path = build_token_cache(src, tok, tmp_path / src.stem, batch_size=64, shard_tokens=20_000)
        peaks[src.stem] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    cache = TokenCache(path)
    assert len(cache) > 130_000 and cache.num_shards >= 7
    # Building holds one batch of documents, never the corpus: the peak does not grow with
    # the corpus and stays far below its size (the tokens alone, as Python ints, are > 4 MB).
    assert peaks["big"] < 250_000 and peaks["big"] < 1.5 * peaks["shakespeare"] + 50_000, peaks

    blocks = pack_blocks(cache, 128, mode="random", num_samples=2000, seed=0)
    blocks[0]
    tracemalloc.start()
    reopened = TokenCache(path)
    blocks = pack_blocks(reopened, 128, mode="random", num_samples=2000, seed=0)
    first = [int(blocks[i]["idx"][0]) for i in range(0, 2000, 10)]
    peak_read = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak_read < 100_000, peak_read
    assert first[0] == int(cache[blocks.offset(0)])
    # Pickling for DataLoader workers carries no token data.
    assert len(pickle.dumps(cache)) < 10_000
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.read(123_456, 10).tolist() == cache.read(123_456, 10).tolist()


def test_pack_blocks_from_cache_equals_in_memory(tok: Tokenizer, corpus: Path, tmp_path: Path) -> None:
    cache = TokenCache(build_token_cache(corpus, tok, tmp_path / "c", shard_tokens=4096))
    array = cache[:].astype(np.int64)
    a = pack_blocks(cache, 64)
    b = pack_blocks(array, 64)
    assert len(a) == len(b) == (len(array) - 1) // 64
    for i in (0, 63, 64, len(a) - 1):  # block 64 spans shards 0 and 1
        assert torch.equal(a[i]["idx"], b[i]["idx"]) and torch.equal(a[i]["targets"], b[i]["targets"])
        assert torch.equal(a[i]["targets"][:-1], a[i]["idx"][1:])
    loader = torch.utils.data.DataLoader(a, batch_size=8, shuffle=False)
    batch = next(iter(loader))
    assert batch["idx"].shape == (8, 64) and batch["idx"].dtype == torch.long
