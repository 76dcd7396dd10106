"""A memory-mapped token cache for corpora larger than memory.

:func:`build_token_cache` tokenizes text files lazily (a batch of documents at a time,
constant memory) into flat binary shards of token ids plus a ``meta.json``:

    <cache dir>/
        meta.json          format, tokenizer fingerprint, dtype, token counts, sources
        shard_00000.bin    raw little-endian uint16 (vocab <= 65536) or uint32 ids
        shard_00001.bin    ...

Every document is followed by the end-of-text id (EOS, or [SEP] for BERT vocabularies)
when ``append_eos``. The cache is built in a temporary folder and renamed into place, so
a crash never leaves a half-written cache; it is rebuilt when the source files (size,
mtime), the tokenizer or the settings change.

:class:`TokenCache` opens the shards with ``np.memmap`` and reads any range of tokens,
across shard boundaries, without loading the corpus; pass it to
:func:`gptbert.data.objectives.pack_blocks` for causal-LM pre-training::

    path = build_token_cache(["corpus.txt"], tok)          # under ~/.cache/gptbert/tokens
    blocks = pack_blocks(TokenCache(path), block_size=256, mode="random")
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gptbert.data.readers.corpus import expand_paths
from gptbert.io.files import staging_dir
from gptbert.io.files import check_text_file

FORMAT_VERSION = 1
META_NAME = "meta.json"
Mode = Literal["line", "blank", "file"]
PathLike = str | os.PathLike[str]


# ---------------------------------------------------------------------------------------
# Locations and fingerprints
# ---------------------------------------------------------------------------------------


def default_cache_root() -> Path:
    """``$GPTBERT_CACHE`` if set, else ``$XDG_CACHE_HOME/gptbert`` or ``~/.cache/gptbert``."""
    env = os.environ.get("GPTBERT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gptbert"


def _resolved_files(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """The files named by ``paths`` (:func:`gptbert.data.readers.expand_paths`), as absolute paths."""
    return [p.resolve() for p in expand_paths(paths)]


_FINGERPRINTS: "weakref.WeakKeyDictionary[Any, tuple[int, str]]" = weakref.WeakKeyDictionary()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """SHA-256 of the tokenizer's full serialization (vocabulary, merges, normalizer, specials).

    Remembered per tokenizer object (and vocabulary size), since serializing a large
    vocabulary costs a few MB and milliseconds.
    """
    try:
        known = _FINGERPRINTS.get(tokenizer)
    except TypeError:  # not weak-referenceable
        known = None
    vocab = int(getattr(tokenizer, "vocab_size", 0))
    if known is not None and known[0] == vocab:
        return known[1]
    digest = _fingerprint(tokenizer)
    try:
        _FINGERPRINTS[tokenizer] = (vocab, digest)
    except TypeError:
        pass
    return digest


def _fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend", tokenizer)
    h = hashlib.sha256()
    h.update(str(getattr(tokenizer, "kind", "")).encode())
    h.update(backend.to_str().encode("utf-8"))
    h.update(json.dumps(sorted(getattr(tokenizer, "special_ids", ()))).encode())
    return h.hexdigest()


def _end_id(tokenizer: Any, eos_id: int | None) -> int:
    if eos_id is not None:
        return int(eos_id)
    for name in ("eos_id", "sep_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise ValueError("the tokenizer has no end-of-text (eos) or [SEP] token; pass eos_id or append_eos=False")


def _settings(tokenizer: Any, mode: str, append_eos: bool, eos_id: int | None, dtype: Any) -> dict[str, Any]:
    vocab = int(tokenizer.vocab_size)
    if dtype is None:
        dtype = np.uint16 if vocab <= 2**16 else np.uint32
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui":
        raise ValueError(f"dtype must be an integer type, got {dtype}")
    if vocab - 1 > np.iinfo(dtype).max:
        raise ValueError(f"dtype {dtype} cannot hold ids of a {vocab}-token vocabulary")
    return {
        "mode": mode,
        "append_eos": bool(append_eos),
        "eos_id": _end_id(tokenizer, eos_id) if append_eos else None,
        "dtype": dtype.newbyteorder("<").str,
        "vocab_size": vocab,
        "tokenizer": tokenizer_fingerprint(tokenizer),
    }


def cache_dir_for(paths: PathLike | Iterable[PathLike], tokenizer: Any, *, root: PathLike | None = None,
                  mode: Mode = "line", append_eos: bool = True, eos_id: int | None = None,
                  dtype: Any = None) -> Path:
    """Deterministic cache folder for these sources + tokenizer + settings.

    ``<root>/tokens/<first file's stem>-<16 hex digits>``; ``root`` defaults to
    :func:`default_cache_root`. File contents are not part of the name: a changed file
    maps to the same folder, whose ``meta.json`` then marks it stale.
    """
    files = _resolved_files(paths)
    key = json.dumps({"files": [str(p) for p in files],
                      **_settings(tokenizer, mode, append_eos, eos_id, dtype)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    base = Path(root).expanduser() if root is not None else default_cache_root()
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in files[0].stem)[:40] or "corpus"
    return base / "tokens" / f"{stem}-{digest}"


def _sources(files: Sequence[Path]) -> list[dict[str, Any]]:
    out = []
    for p in files:
        st = p.stat()
        out.append({"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


# ---------------------------------------------------------------------------------------
# Reading documents lazily
# ---------------------------------------------------------------------------------------


def _open_text(path: Path) -> Any:
    check_text_file(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return open(path, encoding="utf-8-sig", errors="replace", newline="")


def iter_documents(files: Sequence[Path], mode: Mode, *, chunk_lines: int = 256) -> Iterator[tuple[str, bool]]:
    """Yield ``(text, ends_document)`` pieces of the corpus, lazily.

    ``line``: every non-blank line is a document. ``blank``: blocks of lines separated by
    blank lines (joined with ``\\n``). ``file``: each file is one document, read in pieces
    of ``chunk_lines`` lines with their newlines kept (only the last piece ends it).
    Undecodable bytes become U+FFFD.
    """
    if mode not in ("line", "blank", "file"):
        raise ValueError(f"mode: expected 'line', 'blank' or 'file', got {mode!r}")
    for path in files:
        with _open_text(path) as f:
            if mode == "line":
                for line in f:
                    line = line.rstrip("\r\n")
                    if line.strip():
                        yield line, True
            elif mode == "blank":
                block: list[str] = []
                for line in f:
                    line = line.rstrip("\r\n")
                    if line.strip():
                        block.append(line)
                    elif block:
                        yield "\n".join(block), True
                        block = []
                if block:
                    yield "\n".join(block), True
            else:
                piece: list[str] = []
                pending: str | None = None
                for line in f:
                    piece.append(line)
                    if len(piece) >= chunk_lines:
                        if pending is not None:
                            yield pending, False
                        pending, piece = "".join(piece), []
                if piece:
                    if pending is not None:
                        yield pending, False
                    pending = "".join(piece)
                if pending is not None:
                    yield pending, True


# ---------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------


class _ShardWriter:
    """Appends token arrays to ``shard_NNNNN.bin`` files of at most ``shard_tokens`` tokens."""

    def __init__(self, folder: Path, dtype: np.dtype, shard_tokens: int) -> None:
        self.folder, self.dtype, self.shard_tokens = folder, dtype, int(shard_tokens)
        self.shards: list[dict[str, Any]] = []
        self._file: Any = None
        self._count = 0

    def _next(self) -> None:
        self._close_current()
        name = f"shard_{len(self.shards):05d}.bin"
        self._file = open(self.folder / name, "wb")
        self.shards.append({"file": name, "num_tokens": 0})
        self._count = 0

    def _close_current(self) -> None:
        if self._file is not None:
            self._file.close()
            self.shards[-1]["num_tokens"] = self._count
            self._file = None

    def write(self, tokens: np.ndarray) -> None:
        tokens = np.ascontiguousarray(tokens, dtype=self.dtype)
        pos = 0
        while pos < tokens.size:
            if self._file is None or self._count >= self.shard_tokens:
                self._next()
            take = min(self.shard_tokens - self._count, tokens.size - pos)
            self._file.write(tokens[pos: pos + take].tobytes())
            self._count += take
            pos += take

    def close(self) -> list[dict[str, Any]]:
        self._close_current()
        return self.shards


def cache_is_valid(path: PathLike, paths: PathLike | Iterable[PathLike], tokenizer: Any, *, mode: Mode = "line",
                   append_eos: bool = True, eos_id: int | None = None, dtype: Any = None) -> bool:
    """True when ``path`` holds a complete cache of these files, unchanged, for this tokenizer and settings."""
    meta_path = Path(path) / META_NAME
    try:
        meta = json.loads(meta_path.read_text())
        files = _resolved_files(paths)
    except (OSError, ValueError):
        return False
    if meta.get("format") != FORMAT_VERSION:
        return False
    if meta.get("settings") != _settings(tokenizer, mode, append_eos, eos_id, dtype):
        return False
    if meta.get("sources") != _sources(files):
        return False
    itemsize = np.dtype(meta["settings"]["dtype"]).itemsize
    for shard in meta.get("shards", []):
        f = Path(path) / shard["file"]
        if not f.is_file() or f.stat().st_size != shard["num_tokens"] * itemsize:
            return False
    return True


def build_token_cache(
    paths: PathLike | Iterable[PathLike],
    tokenizer: Any,
    out_dir: PathLike | None = None,
    *,
    mode: Mode = "line",
    append_eos: bool = True,
    eos_id: int | None = None,
    dtype: Any = None,
    shard_tokens: int = 1 << 27,
    batch_size: int = 512,
    root: PathLike | None = None,
    force: bool = False,
) -> Path:
    """Tokenize ``paths`` into a memory-mapped cache and return its folder.

    ``out_dir`` defaults to :func:`cache_dir_for` (under ``root`` or ``~/.cache/gptbert``).
    An up-to-date cache there is reused (unless ``force``); a stale one is rebuilt.
    ``mode``: what a document is (see :func:`iter_documents`); ``append_eos`` puts the
    end-of-text id (``eos_id``, default the tokenizer's EOS, else [SEP]) after every
    document. ``dtype``: uint16 for vocabularies up to 65,536 entries, else uint32.
    Documents are encoded ``batch_size`` at a time without special tokens, so memory stays
    bounded whatever the corpus size; shards hold at most ``shard_tokens`` tokens.
    """
    files = _resolved_files(paths)
    settings = _settings(tokenizer, mode, append_eos, eos_id, dtype)
    out = Path(out_dir).expanduser() if out_dir is not None else cache_dir_for(
        files, tokenizer, root=root, mode=mode, append_eos=append_eos, eos_id=eos_id, dtype=dtype)
    same = dict(mode=mode, append_eos=append_eos, eos_id=eos_id, dtype=dtype)
    if not force and cache_is_valid(out, files, tokenizer, **same):
        return out
    if shard_tokens < 1 or batch_size < 1:
        raise ValueError("shard_tokens and batch_size must be >= 1")
    try:
        # Built in a temporary folder beside ``out`` and renamed into place (a stale cache is replaced).
        with staging_dir(out, force=True) as tmp:
            _write_cache(tmp, files, tokenizer, mode, settings, shard_tokens=shard_tokens, batch_size=batch_size)
    except OSError:
        if not cache_is_valid(out, files, tokenizer, **same):  # else another process installed it meanwhile
            raise
    return out


def _write_cache(tmp: Path, files: Sequence[Path], tokenizer: Any, mode: Mode, settings: dict[str, Any], *,
                 shard_tokens: int, batch_size: int) -> None:
    """Tokenize ``files`` into shards and ``meta.json`` in the (new, empty) folder ``tmp``."""
    sources_before = _sources(files)
    np_dtype = np.dtype(settings["dtype"])
    end = settings["eos_id"]
    writer = _ShardWriter(tmp, np_dtype, shard_tokens)
    n_docs = 0
    n_tokens = 0
    batch: list[tuple[str, bool]] = []

    def flush() -> None:
        nonlocal n_docs, n_tokens
        texts = [t for t, _ in batch]
        if hasattr(tokenizer, "encode_batch"):
            encoded = tokenizer.encode_batch(texts, add_special_tokens=False, padding=None).ids
        else:
            encoded = [tokenizer.encode(t, add_special_tokens=False).ids for t in texts]
        parts: list[np.ndarray] = []
        for ids, (_, ends) in zip(encoded, batch):
            parts.append(np.asarray(ids, dtype=np_dtype))
            if ends:
                n_docs += 1
                if end is not None:
                    parts.append(np.asarray([end], dtype=np_dtype))
        if parts:
            arr = np.concatenate(parts)  # (n,)
            writer.write(arr)
            n_tokens += int(arr.size)
        batch.clear()

    for item in iter_documents(files, mode):
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    shards = writer.close()
    if _sources(files) != sources_before:
        raise RuntimeError(f"a source file changed while it was being tokenized: {', '.join(map(str, files))}")
    meta = {
        "format": FORMAT_VERSION,
        "settings": settings,
        "num_tokens": n_tokens,
        "num_documents": n_docs,
        "shards": shards,
        "sources": sources_before,
    }
    (tmp / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


class TokenCache:
    """Read-only view of a token cache: ``len(cache)`` tokens, ``cache[i]``, ``cache[a:b]``.

    Shards are memory-mapped on first use; slices spanning shards are stitched together.
    Picklable without copying data (DataLoader workers reopen the files).
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        meta_path = self.path / META_NAME
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.path}: not a token cache (no {META_NAME})")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{meta_path}: unsupported cache format {self.meta.get('format')!r}")
        self.dtype = np.dtype(self.meta["settings"]["dtype"])
        counts = [int(s["num_tokens"]) for s in self.meta["shards"]]
        self._starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)  # (S+1,)
        self._maps: list[np.memmap | None] = [None] * len(counts)

    @property
    def vocab_size(self) -> int:
        return int(self.meta["settings"]["vocab_size"])

    @property
    def eos_id(self) -> int | None:
        return self.meta["settings"]["eos_id"]

    @property
    def num_documents(self) -> int:
        return int(self.meta["num_documents"])

    @property
    def num_shards(self) -> int:
        return len(self._maps)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _shard(self, k: int) -> np.memmap:
        m = self._maps[k]
        if m is None:
            shard = self.meta["shards"][k]
            m = np.memmap(self.path / shard["file"], dtype=self.dtype, mode="r", shape=(int(shard["num_tokens"]),))
            self._maps[k] = m
        return m

    def read(self, start: int, length: int) -> np.ndarray:
        """Tokens ``[start, start + length)`` as a new array of the cache's dtype (clipped at the end)."""
        n = len(self)
        start = max(0, min(int(start), n))
        stop = max(start, min(start + int(length), n))
        out = np.empty(stop - start, dtype=self.dtype)  # (length,)
        pos = start
        k = int(np.searchsorted(self._starts, start, side="right")) - 1
        while pos < stop:
            s0, s1 = int(self._starts[k]), int(self._starts[k + 1])
            take = min(stop, s1) - pos
            if take > 0:
                out[pos - start: pos - start + take] = self._shard(k)[pos - s0: pos - s0 + take]
                pos += take
            k += 1
        return out

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise ValueError("TokenCache slices must have step 1")
            return self.read(start, max(0, stop - start))
        i = int(key)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(key)
        return int(self.read(i, 1)[0])

    def __iter__(self) -> Iterator[int]:
        step = 1 << 20
        for s in range(0, len(self), step):
            yield from self.read(s, step).tolist()

    def close(self) -> None:
        self._maps = [None] * len(self._maps)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = [None] * len(self._maps)
        return state

    def __repr__(self) -> str:
        return (f"TokenCache({str(self.path)!r}, tokens={len(self)}, documents={self.num_documents}, "
                f"shards={self.num_shards}, dtype={self.dtype.name})")
