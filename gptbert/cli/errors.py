"""The one user-error type of the command line."""

from __future__ import annotations


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""
