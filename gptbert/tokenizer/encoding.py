"""What encoding returns (:class:`Encoding`, :class:`BatchEncoding`) and the checks of its options.

Torch is imported only by :meth:`BatchEncoding.to_tensors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gptbert.tokenizer.errors import TokenizerError

if TYPE_CHECKING:  # pragma: no cover
    import torch

TRUNCATION_STRATEGIES: tuple[str, ...] = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES: tuple[str | None, ...] = ("longest", "max_length", None)


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


def check_options(
    max_length: int | None, truncation: str | bool | None, padding: str | bool | None,
    padding_side: str, pad_to_multiple_of: int | None, truncation_side: str,
) -> tuple[str, str | None]:
    """Validate the encoding options; returns (truncation strategy, padding strategy or None)."""
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
    return truncation, padding  # type: ignore[return-value]


def check_texts(texts: list[str], pairs: list[str] | None) -> None:
    """Every text (and pair) of a batch is a str, and there are as many pairs as texts."""
    if pairs is not None and len(pairs) != len(texts):
        raise TokenizerError(f"encode_batch(): {len(texts)} texts but {len(pairs)} pairs")
    for name, items in (("texts", texts), ("pairs", pairs or [])):
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise TokenizerError(f"encode_batch(): {name}[{i}] is {type(t).__name__}, expected str")


def backend_error(e: Exception, max_length: int | None, truncation: str) -> TokenizerError:
    """A TokenizerError for an exception of the Rust backend."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "runcat" in msg or "Second sequence" in msg:
        return TokenizerError(f"cannot truncate to max_length={max_length} with truncation={truncation!r}: {msg}")
    return TokenizerError(f"tokenizer failed: {msg}")


def pad_rows(rows: list[list[int]], length: int, value: int, side: str) -> list[list[int]]:
    """Pad each row to ``length`` with ``value`` (rows already as long or longer stay as they are)."""
    if side == "right":
        return [row + [value] * (length - len(row)) if len(row) < length else row for row in rows]
    return [[value] * (length - len(row)) + row if len(row) < length else row for row in rows]
