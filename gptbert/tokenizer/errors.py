"""The one error type of the tokenizer package."""

from __future__ import annotations


class TokenizerError(ValueError):
    """A tokenizer file or argument is wrong; the message names the file or the argument."""
