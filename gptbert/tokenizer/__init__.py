"""One tokenizer interface for every model family, built on Hugging Face ``tokenizers``.

Two kinds are supported (see :mod:`gptbert.tokenizer.pipelines`):

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

The package: this file holds :class:`Tokenizer`; ``encoding`` what encoding returns
(:class:`Encoding`, :class:`BatchEncoding`) and its option checks; ``pipelines`` the two kinds'
normalizers, pre-tokenizers and post-processors; ``files`` loading and saving tokenizer files;
``training`` training a new vocabulary; ``errors`` :class:`TokenizerError`.
Torch is imported only by :meth:`BatchEncoding.to_tensors`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import tokenizers

from gptbert.tokenizer.encoding import (
    PADDING_STRATEGIES,
    TRUNCATION_STRATEGIES,
    BatchEncoding,
    Encoding,
    backend_error,
    check_options,
    check_texts,
    pad_rows,
)
from gptbert.tokenizer.errors import TokenizerError
from gptbert.tokenizer.files import load_backend, write_tokenizer_files
from gptbert.tokenizer.pipelines import (
    BPE_SPECIAL_TOKENS,
    ROLES,
    WORDPIECE_SPECIAL_TOKENS,
    check_kind,
    default_special_tokens,
    mark_special,
)
from gptbert.tokenizer.training import resolve_kind, train_on_files, train_on_texts

__all__ = [
    "BPE_SPECIAL_TOKENS",
    "BatchEncoding",
    "Encoding",
    "PADDING_STRATEGIES",
    "TRUNCATION_STRATEGIES",
    "Tokenizer",
    "TokenizerError",
    "WORDPIECE_SPECIAL_TOKENS",
]


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
        self.backend = backend
        self.kind = check_kind(kind)
        self.lowercase = bool(lowercase)
        roles = default_special_tokens(kind)
        roles.update(special_tokens or {})
        # Keep only the roles whose token exists.
        self.special_tokens = {r: (t if t is not None and backend.token_to_id(t) is not None else None)
                               for r, t in roles.items() if r in ROLES}
        mark_special(backend, self.special_tokens.values())
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
        strategy, _ = check_options(max_length, truncation, None, "right", None, truncation_side)
        with self._lock:
            changed = self._configure(
                pair=pair is not None, add_special_tokens=add_special_tokens, max_length=max_length,
                truncation=strategy, truncation_side=truncation_side, padding=None, padding_side="right",
                pad_to_multiple_of=None,
            )
            try:
                enc = self.backend.encode(text, pair, add_special_tokens=add_special_tokens)
            except Exception as e:  # the Rust side raises plain Exception subclasses
                raise backend_error(e, max_length, strategy) from None
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
        pairs = list(pairs) if pairs is not None else None
        check_texts(texts, pairs)
        strategy, pad = check_options(
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
                raise backend_error(e, max_length, strategy) from None
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
            ids = pad_rows(ids, target, self.pad_id, padding_side)
            type_ids = pad_rows(type_ids, target, 0, padding_side)
            mask = pad_rows(mask, target, 0, padding_side)
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
        The files are written under temporary names and moved into place together.
        """
        write_tokenizer_files(directory, json.loads(self._clean_backend_json()), kind=self.kind,
                              lowercase=self.lowercase, special_tokens=self.special_tokens,
                              vocab_size=self.vocab_size)

    @classmethod
    def load(cls, directory_or_file: str | os.PathLike[str], *, lowercase: bool | None = None) -> Tokenizer:
        """Load our saved folder, a BERT folder (vocab.txt and/or tokenizer.json), a GPT-2 folder
        (vocab.json + merges.txt and/or tokenizer.json), or one of those files directly.

        ``lowercase`` overrides what the files say (only used when building from vocab files).
        """
        backend, kind, lower, specials = load_backend(directory_or_file, lowercase)
        return cls(backend, kind, lowercase=lower, special_tokens=specials)

    # -- training ----------------------------------------------------------------------

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
        kind, lower = resolve_kind(kind, lowercase)
        backend = train_on_files(files, kind, vocab_size, lowercase=lower, min_frequency=min_frequency,
                                 show_progress=show_progress)
        return cls(backend, kind, lowercase=lower, special_tokens=default_special_tokens(kind))

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
        kind, lower = resolve_kind(kind, lowercase)
        backend = train_on_texts(texts, kind, vocab_size, lowercase=lower, min_frequency=min_frequency,
                                 show_progress=show_progress, length=length)
        return cls(backend, kind, lowercase=lower, special_tokens=default_special_tokens(kind))
