"""Reading a Hugging Face model directory (config.json and safetensors weights) and writing
its special token ids (config.json + generation_config.json), shared by the HF converters.

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


# ---------------------------------------------------------------------------------------------
# Special token ids: written on export (config.json + generation_config.json) so transformers'
# `generate` stops at the EOS the model was trained with, and carried through a flan_jax
# parameter checkpoint (params_io TOKEN_IDS_FILE) so an imported model exports its own ids.

TOKEN_ID_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
# T5's vocabulary and ours (data/features/vocab.py): pad 0, eos 1, no BOS; decoding starts from id 0.
FLAN_JAX_TOKEN_IDS = {"bos_token_id": None, "eos_token_id": 1, "pad_token_id": 0}
T5_TOKEN_IDS = {**FLAN_JAX_TOKEN_IDS, "decoder_start_token_id": 0}


def read_token_ids(model_dir: str | os.PathLike, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The special ids of a HF model directory: config.json's, overridden by
    generation_config.json's (what transformers' generate uses). Only fields present are
    returned; an id may be an int, a list of ints (several EOS, e.g. Llama 3) or None."""
    model_dir = Path(model_dir)
    config = read_hf_config(model_dir) if config is None else config
    ids = {k: config[k] for k in TOKEN_ID_FIELDS if k in config}
    gen_path = model_dir / "generation_config.json"
    if gen_path.is_file():
        try:
            gen = json.loads(gen_path.read_text())
        except json.JSONDecodeError as e:
            raise FlanJaxError(f"{gen_path}: not valid JSON ({e})") from e
        if not isinstance(gen, dict):
            raise FlanJaxError(f"{gen_path}: expected a JSON object")
        ids.update({k: gen[k] for k in TOKEN_ID_FIELDS if k in gen})
    for key, value in ids.items():
        values = value if isinstance(value, list) else [value]
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in values):
            raise FlanJaxError(f"{model_dir}: {key} {value!r} is not a token id")
    return ids


def write_token_ids(directory: Path, config: dict[str, Any], token_ids: dict[str, Any]) -> dict[str, Any]:
    """Put `token_ids` into the config.json dict and write `directory/generation_config.json`
    (the same ids); returns the updated config dict. Shared by every HF exporter."""
    config = {**config, **token_ids}
    generation = {"_from_model_config": True, **token_ids}
    (directory / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    return config
