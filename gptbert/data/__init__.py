"""Data: readers for corpora and task files, data-set profiles, and (elsewhere in this
package) objectives, collation, augmentation and caching.

Importing this package is cheap: the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    name: "gptbert.data.readers"
    for name in (
        "DataError", "DataWarning", "LabelMap", "PairData", "QAExample", "QAProblem", "RowProblem",
        "SquadData", "TaskData", "TokenData", "detect_format", "iter_corpus", "read_corpus",
        "read_pairs_file", "read_squad", "read_task_file", "read_token_file", "train_dev_split",
    )
}
_LAZY.update({name: "gptbert.data.profile" for name in ("DatasetProfile", "format_profile", "profile_dataset",
                                                          "profile_task_data")})

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
