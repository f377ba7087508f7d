"""Turn one decoded tf.data / TFDS example into plain Python values for field mappings.

    {"premise": b"A cat sat.", "label": np.int64(0), "answers": {"text": np.array([b"x"])}}
 -> {"premise": "A cat sat.", "label": 0, "answers": {"text": ["x"]}}
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def to_python(value: Any) -> Any:
    """Recursively: bytes -> str (UTF-8), numpy scalars -> int/float/bool, arrays -> lists."""
    if isinstance(value, Mapping):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return to_python(value.item())
        return [to_python(v) for v in value]
    if isinstance(value, (list, tuple)):
        return [to_python(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
