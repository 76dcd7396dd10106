"""Files on disk, written once: atomic writes, run-directory names, safetensors with tied weights.

``files``   the one atomic file / directory writer and the overwrite check
``layout``  the name of every file of a run directory
``weights`` safetensors state dicts with tied (shared) tensors stored once

No torch import at package level (``weights`` imports it when called).
"""
