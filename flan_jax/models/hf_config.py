"""Reading a Hugging Face model directory (config.json and safetensors weights), shared by
both HF converters.

Refuses what flan_jax never loads: a missing or malformed file, `auto_map` (remote code) and
pickled weights (`*.bin`, `*.pt`, ...), which can run code when loaded.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def read_hf_config(model_dir: str | os.PathLike) -> dict[str, Any]:
    """config.json as a dict; refuses missing/malformed files and remote code."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FlanJaxError(f"{path}: missing (file not found; not a HF model directory)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise FlanJaxError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise FlanJaxError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise FlanJaxError(f"{path}: expected a JSON object")
    if "auto_map" in config:
        raise FlanJaxError(f"{path}: 'auto_map' asks for remote code, which flan_jax never runs")
    return config


def read_safetensors(model_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Path]]:
    """All tensors (as float32 numpy) and the file each came from.

    A sharded checkpoint (`model.safetensors.index.json`) reads exactly the files its index
    names; otherwise every `*.safetensors` file. Pickled weights are refused by name."""
    from safetensors import SafetensorError, safe_open

    index = model_dir / "model.safetensors.index.json"
    if index.is_file():  # sharded checkpoint: read exactly the files the index names
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise FlanJaxError(f"{index}: malformed safetensors index ({e})") from e
        files = sorted({model_dir / name for name in weight_map.values()})
        missing = [p for p in files if not p.is_file()]
        if missing:
            raise FlanJaxError(f"{index}: names {missing[0].name}, which does not exist")
    else:
        files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise FlanJaxError(
                f"{model_dir / pickles[0]}: pickled weights are refused (they can run code); "
                "re-save the model with save_pretrained(safe_serialization=True)"
            )
        raise FlanJaxError(f"{model_dir}: no *.safetensors weight files")
    tensors: dict[str, np.ndarray] = {}
    origin: dict[str, Path] = {}
    for path in files:
        # framework="flax" reads bfloat16, which numpy alone cannot.
        try:
            with safe_open(str(path), framework="flax") as f:
                for name in f.keys():
                    tensors[name] = np.asarray(f.get_tensor(name), dtype=np.float32)
                    origin[name] = path
        except SafetensorError as e:
            raise FlanJaxError(
                f"{path}: not a readable safetensors file ({e}; {path.stat().st_size} bytes): "
                "truncated or corrupt, download or save it again") from None
    return tensors, origin
