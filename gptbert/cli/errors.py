"""The one user-error type of the command line, and the errors of the library that are the user's."""

from __future__ import annotations


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


def user_error_message(e: BaseException) -> str | None:
    """The one-line message of an exception that reports bad input rather than a bug, else None.

    These are the library's own error types for bad input (each raised with a message naming the
    file, line or field): bad data rows, a file that is not text, an output that exists, an
    unreadable weights file. Anything else is a bug and keeps its traceback.
    """
    import sys

    user_types: list[type] = []
    for module, names in (("gptbert.data.readers.formats", ("DataError",)),
                          ("gptbert.io.files", ("NotTextError", "OutputExistsError", "OutputPathError")),
                          ("gptbert.io.weights", ("WeightsError",)),
                          ("gptbert.training.distributed", ("DeviceError",)),
                          ("gptbert.training.loop", ("DivergedError",))):
        mod = sys.modules.get(module)  # not loaded: none of its errors can have been raised
        if mod is not None:
            user_types += [getattr(mod, n) for n in names]
    if isinstance(e, tuple(user_types)):
        return " ".join(str(e).split("\n")).strip() or type(e).__name__
    return None
