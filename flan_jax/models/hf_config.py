"""Reading a Hugging Face model directory's config.json, shared by both HF converters.

Refuses what flan_jax never loads: a missing or malformed file and `auto_map` (remote code).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flan_jax.errors import FlanJaxError


def read_hf_config(model_dir: str | os.PathLike) -> dict[str, Any]:
    """config.json as a dict; refuses missing/malformed files and remote code."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FlanJaxError(f"{path}: missing (file not found; not a HF model directory)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FlanJaxError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise FlanJaxError(f"{path}: expected a JSON object")
    if "auto_map" in config:
        raise FlanJaxError(f"{path}: 'auto_map' asks for remote code, which flan_jax never runs")
    return config
