"""Tokenizer files: reading BERT / GPT-2 / ``tokenizers`` files and our notes, and writing them.

:func:`load_backend` reads our saved folder, a BERT folder (``vocab.txt`` and/or
``tokenizer.json``), a GPT-2 folder (``vocab.json`` + ``merges.txt`` and/or ``tokenizer.json``),
or one of those files directly. :func:`write_tokenizer_files` writes a folder that both
gptbert and ``transformers`` load. Every problem is a TokenizerError naming the file (and line).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import models

from gptbert.io.files import content_writer, to_json, write_files
from gptbert.io.layout import TOKENIZER_META_FILE
from gptbert.tokenizer.errors import TokenizerError
from gptbert.tokenizer.pipelines import (
    BPE_SPECIAL_TOKENS,
    ENDOFTEXT,
    KINDS,
    ROLES,
    WORDPIECE_SPECIAL_TOKENS,
    bpe_normalizer,
    bpe_pipeline,
    default_special_tokens,
    wordpiece_normalizer,
    wordpiece_pipeline,
    wordpiece_post_processor,
)

Loaded = tuple[tokenizers.Tokenizer, str, bool, dict[str, str | None]]
"""(backend, kind, lowercase, special tokens by role): what a Tokenizer is built from."""


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise TokenizerError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise TokenizerError(f"{path}: not UTF-8 text (byte {e.start})") from None


def _token_string(value: Any) -> str | None:
    """A special-token entry of tokenizer_config.json: a string or an AddedToken dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _hf_special_tokens(directory: Path) -> tuple[dict[str, str], bool | None]:
    """Special tokens and ``do_lower_case`` from transformers' side files, when present."""
    found: dict[str, str] = {}
    lower: bool | None = None
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = directory / name
        if not path.is_file():
            continue
        data = read_json(path)
        if not isinstance(data, dict):
            continue
        for role in ROLES:
            tok = _token_string(data.get(f"{role}_token"))
            if tok is not None:
                found.setdefault(role, tok)
        if isinstance(data.get("do_lower_case"), bool) and lower is None:
            lower = data["do_lower_case"]
    return found, lower


def _normalizer_lowercases(spec: Any) -> bool:
    """Whether a serialized normalizer lowercases (BertNormalizer(lowercase) or Lowercase)."""
    if isinstance(spec, dict):
        if spec.get("type") == "BertNormalizer":
            return bool(spec.get("lowercase", False))
        if spec.get("type") == "Lowercase":
            return True
        return any(_normalizer_lowercases(v) for v in spec.get("normalizers", []) or [])
    return False


def _vocab_looks_uncased(tokens: Iterable[str]) -> bool:
    """Guess the casing of a WordPiece vocabulary: (almost) no token outside ``[...]`` changes
    when lowercased (an uncased BERT vocabulary has a stray symbol or two at most)."""
    total = changed = 0
    for tok in tokens:
        if tok.startswith("[") and tok.endswith("]"):
            continue
        total += 1
        changed += tok.lower() != tok
    return changed <= max(2, total // 1000)


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _wordpiece_from_vocab(path: Path, lowercase: bool | None) -> tuple[tokenizers.Tokenizer, bool]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TokenizerError(f"{path}: cannot read vocabulary ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TokenizerError(f"{path}:{line}: vocabulary is not UTF-8") from None
    tokens = [line.rstrip("\r") for line in text.split("\n")]
    if tokens and tokens[-1] == "":
        tokens.pop()
    vocab: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        vocab.setdefault(tok, i)  # a duplicate keeps its first id, as BERT's loader does
    if not vocab:
        raise TokenizerError(f"{path}: empty vocabulary")
    unk = WORDPIECE_SPECIAL_TOKENS["unk"]
    if unk not in vocab:
        raise TokenizerError(f"{path}: WordPiece vocabulary has no {unk!r} token (expected one token per line)")
    if lowercase is None:
        lowercase = _vocab_looks_uncased(vocab)
    backend = tokenizers.Tokenizer(
        models.WordPiece(vocab, unk_token=unk, continuing_subword_prefix="##", max_input_chars_per_word=100)
    )
    wordpiece_pipeline(backend, lowercase)
    return backend, lowercase


def _bpe_from_files(vocab: Path, merges: Path) -> tokenizers.Tokenizer:
    data = read_json(vocab)
    if not isinstance(data, dict) or not all(isinstance(v, int) for v in data.values()):
        raise TokenizerError(f"{vocab}: expected a JSON object mapping tokens to integer ids")
    pairs: list[tuple[str, str]] = []
    try:
        with open(merges, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line or (lineno == 1 and line.startswith("#version")):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise TokenizerError(f"{merges}:{lineno}: expected two tokens separated by one space")
                a, b = parts
                if a not in data or b not in data or a + b not in data:
                    raise TokenizerError(f"{merges}:{lineno}: merge {a!r} + {b!r} uses a token missing from {vocab.name}")
                pairs.append((a, b))
    except UnicodeDecodeError as e:
        raise TokenizerError(f"{merges}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise TokenizerError(f"{merges}: cannot read merges ({e.strerror})") from None
    return tokenizers.Tokenizer(models.BPE(vocab=data, merges=pairs, fuse_unk=False))


def _from_tokenizer_json(path: Path, specials: dict[str, str | None], lowercase: bool | None,
                         meta: dict[str, Any]) -> Loaded:
    spec = read_json(path)
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise TokenizerError(f"{path}: not a tokenizers JSON file (no 'model' object)")
    model_type = spec["model"].get("type") or ("BPE" if "merges" in spec["model"] else None)
    kind = {"WordPiece": "wordpiece", "BPE": "bpe"}.get(model_type or "")
    if kind is None:
        raise TokenizerError(f"{path}: model type {model_type!r} is not supported (WordPiece or BPE only)")
    if meta.get("kind") not in (None, kind):
        raise TokenizerError(f"{path}: holds a {kind} model but {TOKENIZER_META_FILE} says {meta['kind']!r}")
    try:
        backend = tokenizers.Tokenizer.from_str(json.dumps(spec))
    except Exception as e:
        raise TokenizerError(f"{path}: cannot build tokenizer ({str(e).splitlines()[0]})") from None
    backend.no_truncation()  # our calls set these per call; files from the Hub often fix them
    backend.no_padding()
    lower = _normalizer_lowercases(spec.get("normalizer"))
    if lowercase is not None and lowercase != lower:
        # An explicit request replaces the normalizer of the file.
        backend.normalizer = wordpiece_normalizer(lowercase) if kind == "wordpiece" else bpe_normalizer(lowercase)
        lower = lowercase
    roles = {**default_special_tokens(kind), **specials}
    if kind == "bpe":
        vocab = spec["model"].get("vocab") or {}
        added = {t.get("content") for t in spec.get("added_tokens") or []}
        known = set(vocab) | added
        for role, fallbacks in (("eos", (ENDOFTEXT, "</s>")), ("bos", (ENDOFTEXT, "<s>")),
                                ("pad", ("<pad>", "[PAD]")), ("unk", ("<unk>",))):
            if roles.get(role) in known:
                continue
            roles[role] = next((t for t in fallbacks if t in known), None)
    return backend, kind, lower, roles


def _target_file(path: Path) -> Path:
    """The file to build from: ``path`` itself, or the best tokenizer file in the folder ``path``."""
    if not path.is_dir():
        return path
    for name in ("tokenizer.json", "vocab.txt", "vocab.json"):
        if (path / name).is_file():
            return path / name
    raise TokenizerError(f"{path}: no tokenizer files (expected tokenizer.json, vocab.txt, or vocab.json + merges.txt)")


def load_backend(directory_or_file: str | os.PathLike[str], lowercase: bool | None = None) -> Loaded:
    """What :meth:`gptbert.tokenizer.Tokenizer.load` builds its tokenizer from (see the module docstring).

    ``lowercase`` overrides what the files say (only used when building from vocab files).
    """
    path = Path(directory_or_file)
    if not path.exists():
        raise TokenizerError(f"{path}: no such file or directory")
    directory = path if path.is_dir() else path.parent
    meta: dict[str, Any] = {}
    if (directory / TOKENIZER_META_FILE).is_file():
        meta = read_json(directory / TOKENIZER_META_FILE)
        if not isinstance(meta, dict) or meta.get("kind") not in KINDS:
            raise TokenizerError(f"{directory / TOKENIZER_META_FILE}: expected an object with 'kind' in {KINDS}")
    hf_specials, hf_lower = _hf_special_tokens(directory)
    specials: dict[str, str | None] = dict(hf_specials)
    specials.update(meta.get("special_tokens") or {})
    meta_lower = meta.get("lowercase")
    want_lower = lowercase if lowercase is not None else (meta_lower if isinstance(meta_lower, bool) else hf_lower)
    target = _target_file(path)

    if target.suffix == ".txt" and target.name != "merges.txt":
        backend, lower = _wordpiece_from_vocab(target, want_lower)
        tok_specials = {**WORDPIECE_SPECIAL_TOKENS, **specials}
        wordpiece_post_processor(backend, tok_specials["cls"] or "[CLS]", tok_specials["sep"] or "[SEP]", str(target))
        return backend, "wordpiece", lower, tok_specials
    if target.name == "vocab.json" or target.name == "merges.txt":
        vocab, merges = target.parent / "vocab.json", target.parent / "merges.txt"
        for p in (vocab, merges):
            if not p.is_file():
                raise TokenizerError(f"{p}: missing (a GPT-2 BPE needs vocab.json and merges.txt side by side)")
        backend = _bpe_from_files(vocab, merges)
        lower = bool(want_lower) if want_lower is not None else False
        bpe_pipeline(backend, lower)
        return backend, "bpe", lower, {**BPE_SPECIAL_TOKENS, **specials}
    if target.suffix == ".json":
        return _from_tokenizer_json(target, specials, lowercase, meta)
    raise TokenizerError(
        f"{target}: not a tokenizer file (expected tokenizer.json, vocab.txt, vocab.json or merges.txt)"
    )


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _vocabulary_files(spec: dict[str, Any], kind: str) -> tuple[dict[str, str], dict[str, int]]:
    """({file name: text} of the vocabulary files of ``kind``, the vocabulary with added tokens)."""
    model = spec["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    for added in spec.get("added_tokens") or []:  # tokens added after training/loading
        vocab.setdefault(added["content"], added["id"])
    if kind == "wordpiece":
        by_id = sorted(vocab.items(), key=lambda kv: kv[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise TokenizerError("WordPiece vocabulary ids are not contiguous from 0; cannot write vocab.txt")
        return {"vocab.txt": "".join(tok + "\n" for tok, _ in by_id)}, vocab
    lines = ["#version: 0.2"]
    for m in model.get("merges") or []:
        lines.append(" ".join(m) if isinstance(m, list) else str(m))
    return {"vocab.json": to_json(vocab, indent=None), "merges.txt": "\n".join(lines) + "\n"}, vocab


def write_tokenizer_files(directory: str | os.PathLike[str], spec: dict[str, Any], *, kind: str, lowercase: bool,
                          special_tokens: dict[str, str | None], vocab_size: int) -> None:
    """Write tokenizer.json (``spec``: the backend's JSON), the vocabulary files, transformers' side
    files and our notes (``gptbert_tokenizer.json``) into ``directory``, all at once.

    WordPiece also gets ``vocab.txt``; BPE gets GPT-2's ``vocab.json`` and ``merges.txt``.
    A ``tokenizer_config.json`` and ``special_tokens_map.json`` let transformers load the folder.
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise TokenizerError(f"{out}: exists and is not a directory")
    texts = {"tokenizer.json": to_json(spec)}
    vocab_files, vocab = _vocabulary_files(spec, kind)
    texts.update(vocab_files)
    specials = {f"{r}_token": t for r, t in special_tokens.items() if t is not None}
    if kind == "bpe" and ENDOFTEXT in vocab:
        specials.setdefault("unk_token", ENDOFTEXT)  # what GPT-2 files declare
    hf_config: dict[str, Any] = {
        "tokenizer_class": "BertTokenizer" if kind == "wordpiece" else "GPT2Tokenizer",
        **specials,
    }
    if kind == "wordpiece":
        hf_config.update(do_lower_case=lowercase, tokenize_chinese_chars=True, strip_accents=None)
    else:
        hf_config.update(add_prefix_space=False)
    texts["tokenizer_config.json"] = to_json(hf_config)
    texts["special_tokens_map.json"] = to_json(specials)
    meta = {"format": "gptbert-tokenizer", "version": 1, "kind": kind, "lowercase": lowercase,
            "vocab_size": vocab_size, "special_tokens": special_tokens}
    texts[TOKENIZER_META_FILE] = to_json(meta)
    writers: dict[str, Callable[[Path], None]] = {name: content_writer(text) for name, text in texts.items()}
    write_files(out, writers)
