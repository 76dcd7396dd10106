"""One tokenizer interface for every model family, built on Hugging Face ``tokenizers``.

Two kinds are supported:

* ``"wordpiece"``: BERT style. ``[PAD] [UNK] [CLS] [SEP] [MASK]``, the BERT normalizer
  (optionally lowercasing), the BERT pre-tokenizer, ``[CLS] A [SEP] B [SEP]`` with segment
  ids 0/1, and a ``##`` WordPiece decoder. Reads a BERT ``vocab.txt`` or ``tokenizer.json``
  and produces the same ids as ``transformers.BertTokenizerFast`` on it.
* ``"bpe"``: GPT-2 style byte-level BPE with ``<|endoftext|>``. No special tokens are added
  when encoding (as GPT-2 does); ``bos_id == eos_id`` is the ``<|endoftext|>`` id and
  padding uses that id unless the vocabulary has a pad token. Reads and writes GPT-2's
  ``vocab.json`` + ``merges.txt`` as well as ``tokenizer.json``.

Truncation and padding are configured on the backend only for the duration of one call
(under a lock), so ``Tokenizer.backend`` stays a plain, unconfigured HF tokenizer that other
code may use directly (for offsets, word ids, ...).

Torch is imported only by :meth:`BatchEncoding.to_tensors`.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "BPE_SPECIAL_TOKENS",
    "BatchEncoding",
    "Encoding",
    "META_FILE",
    "PADDING_STRATEGIES",
    "TRUNCATION_STRATEGIES",
    "Tokenizer",
    "TokenizerError",
    "WORDPIECE_SPECIAL_TOKENS",
]

Kind = Literal["wordpiece", "bpe"]
KINDS: tuple[str, ...] = ("wordpiece", "bpe")
TRUNCATION_STRATEGIES: tuple[str, ...] = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES: tuple[str | None, ...] = ("longest", "max_length", None)
META_FILE = "gptbert_tokenizer.json"
ENDOFTEXT = "<|endoftext|>"
ROLES: tuple[str, ...] = ("pad", "unk", "cls", "sep", "mask", "bos", "eos")

WORDPIECE_SPECIAL_TOKENS: dict[str, str | None] = {
    "pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "bos": None, "eos": None,
}
BPE_SPECIAL_TOKENS: dict[str, str | None] = {
    "pad": None, "unk": None, "cls": None, "sep": None, "mask": None, "bos": ENDOFTEXT, "eos": ENDOFTEXT,
}


class TokenizerError(ValueError):
    """A tokenizer file or argument is wrong; the message names the file or the argument."""


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class Encoding:
    """One encoded text (or text pair)."""

    ids: list[int]
    type_ids: list[int]
    attention_mask: list[int]
    offsets: list[tuple[int, int]]
    """Character span of each token in its own input string (text or pair)."""
    special_tokens_mask: list[int]
    """1 for tokens added by the post-processor ([CLS], [SEP], padding), else 0."""
    word_ids: list[int | None]
    """Index of the pre-tokenized word each token comes from (None for special tokens)."""
    sequence_ids: list[int | None] = field(default_factory=list)
    """0 for tokens of the text, 1 for tokens of the pair, None for special tokens."""

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class BatchEncoding:
    """A batch of encodings as lists of lists (rectangular when padded)."""

    ids: list[list[int]]
    type_ids: list[list[int]]
    attention_mask: list[list[int]]
    offsets: list[list[tuple[int, int]]] | None = None
    """Only filled when ``encode_batch(..., return_offsets=True)``."""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> list[int]:
        """Number of real (non-padding) tokens per row."""
        return [sum(m) for m in self.attention_mask]

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """``{"idx", "token_type_ids", "attention_mask"}`` as ``torch.long`` tensors (needs padding)."""
        widths = {len(row) for row in self.ids}
        if len(widths) > 1:
            raise TokenizerError(
                f"cannot make tensors from rows of different lengths ({min(widths)}..{max(widths)} tokens); "
                "encode with padding='longest' or padding='max_length' (and truncation)"
            )
        import torch

        return {
            "idx": torch.tensor(self.ids, dtype=torch.long),
            "token_type_ids": torch.tensor(self.type_ids, dtype=torch.long),
            "attention_mask": torch.tensor(self.attention_mask, dtype=torch.long),
        }


# --------------------------------------------------------------------------------------
# File helpers
# --------------------------------------------------------------------------------------


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_json(path: Path) -> Any:
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
        data = _read_json(path)
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
# Backends
# --------------------------------------------------------------------------------------


def _wordpiece_pipeline(backend: tokenizers.Tokenizer, lowercase: bool) -> None:
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)


def _wordpiece_post_processor(backend: tokenizers.Tokenizer, cls: str, sep: str, source: str) -> None:
    cls_id, sep_id = backend.token_to_id(cls), backend.token_to_id(sep)
    if cls_id is None or sep_id is None:
        missing = cls if cls_id is None else sep
        raise TokenizerError(f"{source}: WordPiece vocabulary has no {missing!r} token")
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, cls_id), (sep, sep_id)],
    )


def _bpe_pipeline(backend: tokenizers.Tokenizer, lowercase: bool) -> None:
    backend.normalizer = normalizers.Lowercase() if lowercase else None
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    # Adds no tokens (GPT-2 convention); trims the leading space out of token offsets.
    backend.post_processor = processors.ByteLevel(trim_offsets=True)


def _mark_special(backend: tokenizers.Tokenizer, tokens: Iterable[str | None]) -> None:
    present = [t for t in dict.fromkeys(tokens) if t is not None and backend.token_to_id(t) is not None]
    if present:
        backend.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in present])


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
    _wordpiece_pipeline(backend, lowercase)
    return backend, lowercase


def _bpe_from_files(vocab: Path, merges: Path) -> tokenizers.Tokenizer:
    data = _read_json(vocab)
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


# --------------------------------------------------------------------------------------
# The tokenizer
# --------------------------------------------------------------------------------------


class Tokenizer:
    """A WordPiece or byte-level BPE tokenizer with BERT/GPT-2 conventions."""

    kind: str
    backend: tokenizers.Tokenizer
    lowercase: bool
    special_tokens: dict[str, str | None]
    pad_id: int
    unk_id: int | None
    cls_id: int | None
    sep_id: int | None
    mask_id: int | None
    bos_id: int | None
    eos_id: int | None
    special_ids: frozenset[int]

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        kind: str,
        *,
        lowercase: bool,
        special_tokens: dict[str, str | None] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise TokenizerError(f"unknown tokenizer kind {kind!r}; expected one of {', '.join(KINDS)}")
        self.backend = backend
        self.kind = kind
        self.lowercase = bool(lowercase)
        defaults = WORDPIECE_SPECIAL_TOKENS if kind == "wordpiece" else BPE_SPECIAL_TOKENS
        roles = dict(defaults)
        roles.update(special_tokens or {})
        # Keep only the roles whose token exists.
        self.special_tokens = {r: (t if t is not None and backend.token_to_id(t) is not None else None)
                               for r, t in roles.items() if r in ROLES}
        _mark_special(backend, self.special_tokens.values())
        ids = {r: (backend.token_to_id(t) if t is not None else None) for r, t in self.special_tokens.items()}
        self.unk_id, self.cls_id, self.sep_id, self.mask_id = ids["unk"], ids["cls"], ids["sep"], ids["mask"]
        self.bos_id, self.eos_id = ids["bos"], ids["eos"]
        pad = ids["pad"] if ids["pad"] is not None else self.eos_id
        if pad is None:
            raise TokenizerError(
                f"{kind} tokenizer has neither a pad token nor an end-of-text token to pad with "
                f"(special tokens: {self.special_tokens})"
            )
        self.pad_id = pad
        added = {i for i, tok in backend.get_added_tokens_decoder().items() if tok.special}
        self.special_ids = frozenset(added | {i for i in ids.values() if i is not None})
        self._lock = threading.Lock()
        # Single texts get segment id 0 everywhere with every post-processor we build or load
        # from BERT/GPT-2 files; checked once so that batches can skip converting them.
        self._single_type_ids_zero = not any(backend.encode("a b").type_ids)

    # -- pickling (DataLoader workers) ------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size}, lowercase={self.lowercase})"

    # -- vocabulary --------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def pad_token(self) -> str:
        return self.backend.id_to_token(self.pad_id)  # type: ignore[return-value]

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self.backend.id_to_token(int(i))

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab(with_added_tokens=True)

    def tokenize(self, text: str) -> list[str]:
        """Token strings of ``text`` without special tokens."""
        with self._lock:
            return self.backend.encode(text, add_special_tokens=False).tokens

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self.backend.num_special_tokens_to_add(pair)

    # -- encoding ----------------------------------------------------------------------

    def _check_options(
        self, max_length: int | None, truncation: str | bool | None, padding: str | bool | None,
        padding_side: str, pad_to_multiple_of: int | None, truncation_side: str,
    ) -> tuple[str, str | None]:
        if truncation is True:
            truncation = "longest_first"
        elif truncation is False or truncation is None:
            truncation = "do_not_truncate"
        if truncation not in TRUNCATION_STRATEGIES:
            raise TokenizerError(f"truncation={truncation!r}; expected one of {', '.join(TRUNCATION_STRATEGIES)}")
        if padding is True:
            padding = "longest"
        elif padding is False or padding == "do_not_pad":
            padding = None
        if padding not in PADDING_STRATEGIES:
            raise TokenizerError(f"padding={padding!r}; expected 'longest', 'max_length' or None")
        if padding_side not in ("right", "left"):
            raise TokenizerError(f"padding_side={padding_side!r}; expected 'right' or 'left'")
        if truncation_side not in ("right", "left"):
            raise TokenizerError(f"truncation_side={truncation_side!r}; expected 'right' or 'left'")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise TokenizerError(f"max_length={max_length!r}; expected a positive integer or None")
        if padding == "max_length" and max_length is None:
            raise TokenizerError("padding='max_length' needs max_length")
        if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1):
            raise TokenizerError(f"pad_to_multiple_of={pad_to_multiple_of!r}; expected a positive integer")
        return truncation, padding

    def _configure(
        self, *, pair: bool, add_special_tokens: bool, max_length: int | None, truncation: str,
        truncation_side: str, padding: str | None, padding_side: str, pad_to_multiple_of: int | None,
    ) -> bool:
        """Set truncation/padding on the backend for one call; True when something was set."""
        changed = False
        if max_length is not None and truncation != "do_not_truncate":
            added = self.backend.num_special_tokens_to_add(pair) if add_special_tokens else 0
            if max_length <= added:
                raise TokenizerError(
                    f"max_length={max_length} leaves no room for text: the {self.kind} tokenizer adds "
                    f"{added} special tokens to a {'pair' if pair else 'single text'}"
                )
            self.backend.enable_truncation(max_length, stride=0, strategy=truncation, direction=truncation_side)
            changed = True
        if padding is not None:
            self.backend.enable_padding(
                direction=padding_side,
                pad_id=self.pad_id,
                pad_type_id=0,
                pad_token=self.pad_token,
                length=max_length if padding == "max_length" else None,
                pad_to_multiple_of=pad_to_multiple_of,
            )
            changed = True
        return changed

    def _reset(self) -> None:
        self.backend.no_truncation()
        self.backend.no_padding()

    @staticmethod
    def _wrap_backend_error(e: Exception, max_length: int | None, truncation: str) -> TokenizerError:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "runcat" in msg or "Second sequence" in msg:
            return TokenizerError(f"cannot truncate to max_length={max_length} with truncation={truncation!r}: {msg}")
        return TokenizerError(f"tokenizer failed: {msg}")

    def encode(
        self,
        text: str,
        pair: str | None = None,
        *,
        add_special_tokens: bool = True,
        max_length: int | None = None,
        truncation: str | bool | None = "longest_first",
        truncation_side: str = "right",
    ) -> Encoding:
        """Encode one text (and optional pair). ``max_length`` counts special tokens."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode() expects a str, got {type(text).__name__}")
        if pair is not None and not isinstance(pair, str):
            raise TokenizerError(f"encode() expects pair to be a str or None, got {type(pair).__name__}")
        strategy, _ = self._check_options(max_length, truncation, None, "right", None, truncation_side)
        with self._lock:
            changed = self._configure(
                pair=pair is not None, add_special_tokens=add_special_tokens, max_length=max_length,
                truncation=strategy, truncation_side=truncation_side, padding=None, padding_side="right",
                pad_to_multiple_of=None,
            )
            try:
                enc = self.backend.encode(text, pair, add_special_tokens=add_special_tokens)
            except Exception as e:  # the Rust side raises plain Exception subclasses
                raise self._wrap_backend_error(e, max_length, strategy) from None
            finally:
                if changed:
                    self._reset()
        return Encoding(
            ids=enc.ids,
            type_ids=enc.type_ids,
            attention_mask=enc.attention_mask,
            offsets=enc.offsets,
            special_tokens_mask=enc.special_tokens_mask,
            word_ids=enc.word_ids,
            sequence_ids=enc.sequence_ids,
        )

    def encode_batch(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        max_length: int | None = None,
        truncation: str | bool | None = "longest_first",
        padding: str | bool | None = "longest",
        padding_side: str = "right",
        pad_to_multiple_of: int | None = None,
        truncation_side: str = "right",
        return_offsets: bool = False,
    ) -> BatchEncoding:
        """Encode many texts at once (parallel in Rust). ``padding=None`` gives ragged rows."""
        if isinstance(texts, str):
            raise TokenizerError("encode_batch() expects a list of texts, got a single str (use encode())")
        texts = list(texts)
        if pairs is not None:
            pairs = list(pairs)
            if len(pairs) != len(texts):
                raise TokenizerError(f"encode_batch(): {len(texts)} texts but {len(pairs)} pairs")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TokenizerError(f"encode_batch(): texts[{i}] is {type(t).__name__}, expected str")
        if pairs is not None:
            for i, t in enumerate(pairs):
                if not isinstance(t, str):
                    raise TokenizerError(f"encode_batch(): pairs[{i}] is {type(t).__name__}, expected str")
        strategy, pad = self._check_options(
            max_length, truncation, padding, padding_side, pad_to_multiple_of, truncation_side
        )
        inputs: list[Any] = texts if pairs is None else list(zip(texts, pairs))
        # Without offsets, padding is done here in Python: cheaper than padding every field
        # (token strings, offsets, word ids, ...) of every Rust encoding.
        rust_pad = pad if return_offsets else None
        with self._lock:
            changed = self._configure(
                pair=pairs is not None, add_special_tokens=add_special_tokens, max_length=max_length,
                truncation=strategy, truncation_side=truncation_side, padding=rust_pad,
                padding_side=padding_side, pad_to_multiple_of=pad_to_multiple_of,
            )
            try:
                if return_offsets:
                    encs = self.backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
                else:
                    encs = self.backend.encode_batch_fast(inputs, add_special_tokens=add_special_tokens)
            except Exception as e:
                raise self._wrap_backend_error(e, max_length, strategy) from None
            finally:
                if changed:
                    self._reset()
        ids = [e.ids for e in encs]
        if pairs is None and self._single_type_ids_zero:
            type_ids = [[0] * len(row) for row in ids]  # cheaper than converting from Rust
        else:
            type_ids = [e.type_ids for e in encs]
        if return_offsets:
            return BatchEncoding(ids=ids, type_ids=type_ids, attention_mask=[e.attention_mask for e in encs],
                                 offsets=[e.offsets for e in encs])
        mask = [[1] * len(row) for row in ids]
        if pad is not None and ids:
            target = max(len(row) for row in ids) if pad == "longest" else max_length
            assert target is not None
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            ids = _pad_rows(ids, target, self.pad_id, padding_side)
            type_ids = _pad_rows(type_ids, target, 0, padding_side)
            mask = _pad_rows(mask, target, 0, padding_side)
        return BatchEncoding(ids=ids, type_ids=type_ids, attention_mask=mask)

    def __call__(self, text: str, pair: str | None = None, **kwargs: Any) -> Encoding:
        return self.encode(text, pair, **kwargs)

    # -- decoding ----------------------------------------------------------------------

    @staticmethod
    def _as_id_list(ids: Any) -> list[int]:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            return [ids]
        return [int(i) for i in ids]

    def decode(self, ids: Iterable[int] | Any, skip_special_tokens: bool = True) -> str:
        """Text of ``ids`` (a list, a 1-D tensor or array)."""
        return self.backend.decode(self._as_id_list(ids), skip_special_tokens=skip_special_tokens)

    def decode_batch(self, batch: Iterable[Iterable[int]] | Any, skip_special_tokens: bool = True) -> list[str]:
        if hasattr(batch, "tolist"):
            batch = batch.tolist()
        return self.backend.decode_batch([self._as_id_list(row) for row in batch],
                                         skip_special_tokens=skip_special_tokens)

    # -- saving and loading ------------------------------------------------------------

    def _clean_backend_json(self) -> str:
        with self._lock:
            self._reset()
            return self.backend.to_str(pretty=True)

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write tokenizer.json, the vocabulary files and gptbert_tokenizer.json into ``directory``.

        WordPiece also gets ``vocab.txt``; BPE gets GPT-2's ``vocab.json`` and ``merges.txt``.
        A ``tokenizer_config.json`` and ``special_tokens_map.json`` let transformers load the folder.
        Each file is written to a temporary name first and renamed into place.
        """
        out = Path(directory)
        if out.exists() and not out.is_dir():
            raise TokenizerError(f"{out}: exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
        spec = json.loads(self._clean_backend_json())
        _atomic_write_text(out / "tokenizer.json", json.dumps(spec, ensure_ascii=False, indent=2) + "\n")
        model = spec["model"]
        vocab: dict[str, int] = dict(model["vocab"])
        for added in spec.get("added_tokens") or []:  # tokens added after training/loading
            vocab.setdefault(added["content"], added["id"])
        if self.kind == "wordpiece":
            by_id = sorted(vocab.items(), key=lambda kv: kv[1])
            if [i for _, i in by_id] != list(range(len(by_id))):
                raise TokenizerError("WordPiece vocabulary ids are not contiguous from 0; cannot write vocab.txt")
            _atomic_write_text(out / "vocab.txt", "".join(tok + "\n" for tok, _ in by_id))
        else:
            merges = model.get("merges") or []
            lines = ["#version: 0.2"]
            for m in merges:
                lines.append(" ".join(m) if isinstance(m, list) else str(m))
            _atomic_write_text(out / "vocab.json", json.dumps(vocab, ensure_ascii=False) + "\n")
            _atomic_write_text(out / "merges.txt", "\n".join(lines) + "\n")
        specials = {f"{r}_token": t for r, t in self.special_tokens.items() if t is not None}
        if self.kind == "bpe" and self.token_to_id(ENDOFTEXT) is not None:
            specials.setdefault("unk_token", ENDOFTEXT)  # what GPT-2 files declare
        hf_config: dict[str, Any] = {
            "tokenizer_class": "BertTokenizer" if self.kind == "wordpiece" else "GPT2Tokenizer",
            **specials,
        }
        if self.kind == "wordpiece":
            hf_config.update(do_lower_case=self.lowercase, tokenize_chinese_chars=True, strip_accents=None)
        else:
            hf_config.update(add_prefix_space=False)
        _atomic_write_text(out / "tokenizer_config.json", json.dumps(hf_config, ensure_ascii=False, indent=2) + "\n")
        _atomic_write_text(out / "special_tokens_map.json", json.dumps(specials, ensure_ascii=False, indent=2) + "\n")
        meta = {
            "format": "gptbert-tokenizer",
            "version": 1,
            "kind": self.kind,
            "lowercase": self.lowercase,
            "vocab_size": self.vocab_size,
            "special_tokens": self.special_tokens,
        }
        _atomic_write_text(out / META_FILE, json.dumps(meta, ensure_ascii=False, indent=2) + "\n")

    @classmethod
    def load(cls, directory_or_file: str | os.PathLike[str], *, lowercase: bool | None = None) -> Tokenizer:
        """Load our saved folder, a BERT folder (vocab.txt and/or tokenizer.json), a GPT-2 folder
        (vocab.json + merges.txt and/or tokenizer.json), or one of those files directly.

        ``lowercase`` overrides what the files say (only used when building from vocab files).
        """
        path = Path(directory_or_file)
        if not path.exists():
            raise TokenizerError(f"{path}: no such file or directory")
        directory = path if path.is_dir() else path.parent
        meta: dict[str, Any] = {}
        if (directory / META_FILE).is_file():
            meta = _read_json(directory / META_FILE)
            if not isinstance(meta, dict) or meta.get("kind") not in KINDS:
                raise TokenizerError(f"{directory / META_FILE}: expected an object with 'kind' in {KINDS}")
        hf_specials, hf_lower = _hf_special_tokens(directory)
        specials: dict[str, str | None] = dict(hf_specials)
        specials.update(meta.get("special_tokens") or {})
        meta_lower = meta.get("lowercase")
        want_lower = lowercase if lowercase is not None else (meta_lower if isinstance(meta_lower, bool) else hf_lower)

        if path.is_dir():
            if (path / "tokenizer.json").is_file():
                target = path / "tokenizer.json"
            elif (path / "vocab.txt").is_file():
                target = path / "vocab.txt"
            elif (path / "vocab.json").is_file():
                target = path / "vocab.json"
            else:
                raise TokenizerError(
                    f"{path}: no tokenizer files (expected tokenizer.json, vocab.txt, or vocab.json + merges.txt)"
                )
        else:
            target = path

        if target.suffix == ".txt" and target.name != "merges.txt":
            backend, lower = _wordpiece_from_vocab(target, want_lower)
            tok_specials = {**WORDPIECE_SPECIAL_TOKENS, **specials}
            _wordpiece_post_processor(backend, tok_specials["cls"] or "[CLS]", tok_specials["sep"] or "[SEP]", str(target))
            return cls(backend, "wordpiece", lowercase=lower, special_tokens=tok_specials)
        if target.name == "vocab.json" or target.name == "merges.txt":
            vocab, merges = target.parent / "vocab.json", target.parent / "merges.txt"
            for p in (vocab, merges):
                if not p.is_file():
                    raise TokenizerError(f"{p}: missing (a GPT-2 BPE needs vocab.json and merges.txt side by side)")
            backend = _bpe_from_files(vocab, merges)
            lower = bool(want_lower) if want_lower is not None else False
            _bpe_pipeline(backend, lower)
            return cls(backend, "bpe", lowercase=lower, special_tokens={**BPE_SPECIAL_TOKENS, **specials})
        if target.suffix == ".json":
            return cls._from_tokenizer_json(target, specials, lowercase, meta)
        raise TokenizerError(
            f"{target}: not a tokenizer file (expected tokenizer.json, vocab.txt, vocab.json or merges.txt)"
        )

    @classmethod
    def _from_tokenizer_json(
        cls, path: Path, specials: dict[str, str | None], lowercase: bool | None, meta: dict[str, Any]
    ) -> Tokenizer:
        spec = _read_json(path)
        if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
            raise TokenizerError(f"{path}: not a tokenizers JSON file (no 'model' object)")
        model_type = spec["model"].get("type") or ("BPE" if "merges" in spec["model"] else None)
        kind = {"WordPiece": "wordpiece", "BPE": "bpe"}.get(model_type or "")
        if kind is None:
            raise TokenizerError(f"{path}: model type {model_type!r} is not supported (WordPiece or BPE only)")
        if meta.get("kind") not in (None, kind):
            raise TokenizerError(f"{path}: holds a {kind} model but {META_FILE} says {meta['kind']!r}")
        try:
            backend = tokenizers.Tokenizer.from_str(json.dumps(spec))
        except Exception as e:
            raise TokenizerError(f"{path}: cannot build tokenizer ({str(e).splitlines()[0]})") from None
        backend.no_truncation()  # our calls set these per call; files from the Hub often fix them
        backend.no_padding()
        lower = _normalizer_lowercases(spec.get("normalizer"))
        if lowercase is not None and lowercase != lower:
            # An explicit request replaces the normalizer of the file.
            if kind == "wordpiece":
                backend.normalizer = normalizers.BertNormalizer(
                    clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
                )
            else:
                backend.normalizer = normalizers.Lowercase() if lowercase else None
            lower = lowercase
        defaults = WORDPIECE_SPECIAL_TOKENS if kind == "wordpiece" else BPE_SPECIAL_TOKENS
        roles = {**defaults, **specials}
        if kind == "bpe":
            vocab = spec["model"].get("vocab") or {}
            added = {t.get("content") for t in spec.get("added_tokens") or []}
            known = set(vocab) | added
            for role, fallbacks in (("eos", (ENDOFTEXT, "</s>")), ("bos", (ENDOFTEXT, "<s>")),
                                    ("pad", ("<pad>", "[PAD]")), ("unk", ("<unk>",))):
                if roles.get(role) in known:
                    continue
                roles[role] = next((t for t in fallbacks if t in known), None)
        return cls(backend, kind, lowercase=lower, special_tokens=roles)

    # -- training ----------------------------------------------------------------------

    @staticmethod
    def _new_backend(kind: str, lowercase: bool) -> tokenizers.Tokenizer:
        if kind == "wordpiece":
            backend = tokenizers.Tokenizer(
                models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100)
            )
            _wordpiece_pipeline(backend, lowercase)
        else:
            backend = tokenizers.Tokenizer(models.BPE(fuse_unk=False))
            _bpe_pipeline(backend, lowercase)
        return backend

    @staticmethod
    def _trainer(kind: str, vocab_size: int, min_frequency: int, show_progress: bool) -> Any:
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
            raise TokenizerError(f"vocab_size={vocab_size!r}; expected an integer")
        if min_frequency < 1:
            raise TokenizerError(f"min_frequency={min_frequency}; expected >= 1")
        if kind == "wordpiece":
            specials = [t for t in WORDPIECE_SPECIAL_TOKENS.values() if t is not None]
            if vocab_size <= len(specials) + 26:
                raise TokenizerError(f"vocab_size={vocab_size} is too small for WordPiece (need > {len(specials) + 26})")
            return trainers.WordPieceTrainer(
                vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                show_progress=show_progress, continuing_subword_prefix="##",
            )
        if vocab_size < 257:
            raise TokenizerError(f"vocab_size={vocab_size} is too small for byte-level BPE (need >= 257: 256 bytes + {ENDOFTEXT})")
        return trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[ENDOFTEXT],
            show_progress=show_progress, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )

    @classmethod
    def _finish_training(cls, backend: tokenizers.Tokenizer, kind: str, lowercase: bool) -> Tokenizer:
        if kind == "wordpiece":
            _wordpiece_post_processor(backend, "[CLS]", "[SEP]", "trained vocabulary")
            return cls(backend, kind, lowercase=lowercase, special_tokens=dict(WORDPIECE_SPECIAL_TOKENS))
        return cls(backend, kind, lowercase=lowercase, special_tokens=dict(BPE_SPECIAL_TOKENS))

    @staticmethod
    def _resolve_kind(kind: str, lowercase: bool | None) -> tuple[str, bool]:
        kind = str(kind).lower()
        if kind not in KINDS:
            raise TokenizerError(f"unknown tokenizer kind {kind!r}; expected one of {', '.join(KINDS)}")
        # Default: BERT-style WordPiece lowercases, GPT-2-style BPE keeps case.
        return kind, (kind == "wordpiece") if lowercase is None else bool(lowercase)

    @classmethod
    def train(
        cls,
        files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        kind: str,
        vocab_size: int,
        *,
        lowercase: bool | None = None,
        min_frequency: int = 2,
        show_progress: bool = True,
    ) -> Tokenizer:
        """Train on UTF-8 text files (one sequence per line). ``lowercase=None``: True for
        WordPiece, False for BPE (GPT-2 keeps case)."""
        kind, lower = cls._resolve_kind(kind, lowercase)
        paths = [Path(files)] if isinstance(files, (str, os.PathLike)) else [Path(f) for f in files]
        if not paths:
            raise TokenizerError("no training files given")
        for p in paths:
            if not p.is_file():
                raise TokenizerError(f"{p}: training file not found")
            _check_utf8(p)
        trainer = cls._trainer(kind, vocab_size, min_frequency, show_progress)
        backend = cls._new_backend(kind, lower)
        try:
            backend.train([str(p) for p in paths], trainer)
        except Exception as e:
            raise TokenizerError(f"training failed on {', '.join(map(str, paths))}: {str(e).splitlines()[0]}") from None
        return cls._finish_training(backend, kind, lower)

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        kind: str,
        vocab_size: int,
        *,
        lowercase: bool | None = None,
        min_frequency: int = 2,
        show_progress: bool = True,
        length: int | None = None,
    ) -> Tokenizer:
        """Train from an iterable of texts (e.g. documents already in memory)."""
        kind, lower = cls._resolve_kind(kind, lowercase)
        trainer = cls._trainer(kind, vocab_size, min_frequency, show_progress)
        backend = cls._new_backend(kind, lower)
        if length is None and hasattr(texts, "__len__"):
            length = len(texts)  # type: ignore[arg-type]

        def checked() -> Iterator[str]:
            for i, t in enumerate(texts):
                if not isinstance(t, str):
                    raise TokenizerError(f"from_texts(): item {i} is {type(t).__name__}, expected str")
                yield t

        backend.train_from_iterator(checked(), trainer, length=length)
        return cls._finish_training(backend, kind, lower)


def _pad_rows(rows: list[list[int]], length: int, value: int, side: str) -> list[list[int]]:
    """Pad each row to ``length`` with ``value`` (rows already as long or longer stay as they are)."""
    if side == "right":
        return [row + [value] * (length - len(row)) if len(row) < length else row for row in rows]
    return [[value] * (length - len(row)) + row if len(row) < length else row for row in rows]


def _check_utf8(path: Path, chunk: int = 1 << 20) -> None:
    """Raise TokenizerError naming file and line if ``path`` is not UTF-8."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            final = not block
            try:
                decoder.decode(block, final=final)
            except UnicodeDecodeError as e:
                line += block[: max(e.start, 0)].count(b"\n")
                raise TokenizerError(f"{path}:{line}: not UTF-8 text") from None
            if final:
                return
            line += block.count(b"\n")

