"""A flan_jax parameter checkpoint: a directory written atomically, readable without the trainer.

Layout of CKPT/:
    model_config.json   {"family": "decoder" | "gemma3" | "t5", "config": {<config dataclass fields>},
                         "token_ids": {"bos_token_id": ..., "eos_token_id": ..., ...}} (token_ids
                         only for a model imported from HF: its own ids, written back on export)
    params.safetensors  float32 tensors keyed by their '/'-joined tree path,
                        e.g. "layers_0/attention/query/kernel" -> [D, H, Dh]

Writes go to a temporary sibling directory that is renamed into place only when complete, so
an error (or a kill) never leaves a half-written checkpoint at the output path.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError

CONFIG_FILE = "model_config.json"
PARAMS_FILE = "params.safetensors"


@contextlib.contextmanager
def atomic_directory(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yields a fresh temporary directory that becomes `out_dir` on success.

    Refuses an existing non-empty `out_dir` (nothing is overwritten). On any exception the
    temporary directory is removed and `out_dir` is untouched.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FlanJaxError(f"{out}: output path exists and is not an empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def flatten_params(params: Any) -> dict[str, np.ndarray]:
    """{'a': {'b': x}} -> {'a/b': np.asarray(x)}; unboxes flax partitioning metadata."""
    import flax.linen as nn

    flat: dict[str, np.ndarray] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) or hasattr(node, "items"):
            for key, child in node.items():
                walk(f"{prefix}/{key}" if prefix else str(key), child)
        else:
            flat[prefix] = np.asarray(node)

    walk("", nn.meta.unbox(params))
    return flat


def unflatten_params(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    """Inverse of `flatten_params`."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree


def _config_class(family: str) -> type:
    if family == "decoder":
        from flan_jax.models.decoder import DecoderConfig

        return DecoderConfig
    if family == "gemma3":
        from flan_jax.models.gemma import Gemma3Config

        return Gemma3Config
    if family == "t5":
        from flan_jax.models import t5

        return t5.T5Config
    raise FlanJaxError(f"unknown model family {family!r} (expected 'decoder', 'gemma3' or 't5')")


def family_of(config: Any) -> str:
    """'decoder' for a DecoderConfig, 'gemma3' for a Gemma3Config, 't5' for a T5Config."""
    name = type(config).__name__
    families = {"DecoderConfig": "decoder", "Gemma3Config": "gemma3", "T5Config": "t5"}
    if name not in families:
        raise FlanJaxError(f"no checkpoint family for config type {name}")
    return families[name]


def save_checkpoint(out_dir: str | os.PathLike, config: Any, params: Any,
                    token_ids: dict[str, Any] | None = None) -> Path:
    """Writes config + float32 params (+ HF special token ids) to `out_dir` atomically."""
    from safetensors.numpy import save_file

    family = family_of(config)
    flat = {k: v.astype(np.float32) for k, v in flatten_params(params).items()}
    with atomic_directory(out_dir) as tmp:
        payload = {"family": family, "config": dataclasses.asdict(config)}
        if token_ids is not None:
            payload["token_ids"] = dict(token_ids)
        (tmp / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        save_file(flat, str(tmp / PARAMS_FILE), metadata={"format": "flan_jax"})
    return Path(out_dir)


def load_config(ckpt_dir: str | os.PathLike) -> Any:
    """The config dataclass stored in a checkpoint directory."""
    path = Path(ckpt_dir) / CONFIG_FILE
    if not path.is_file():
        raise FlanJaxError(f"{path}: missing (not a flan_jax parameter checkpoint)")
    try:
        payload = json.loads(path.read_text())
        family, fields = payload["family"], payload["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise FlanJaxError(f"{path}: malformed ({e})") from e
    cls = _config_class(family)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise FlanJaxError(f"{path}: unknown {cls.__name__} fields {unknown}")
    return cls(**fields)


def load_token_ids(ckpt_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The HF special token ids stored by `save_checkpoint`, or None (a model not from HF)."""
    path = Path(ckpt_dir) / CONFIG_FILE
    try:
        ids = json.loads(path.read_text()).get("token_ids")
    except (OSError, json.JSONDecodeError, AttributeError) as e:
        raise FlanJaxError(f"{path}: cannot read ({e})") from e
    if ids is not None and not isinstance(ids, dict):
        raise FlanJaxError(f"{path}: 'token_ids' must be an object, got {type(ids).__name__}")
    return ids


def load_checkpoint(ckpt_dir: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(config, params) from a checkpoint directory; params are float32 numpy arrays."""
    from safetensors.numpy import load_file

    config = load_config(ckpt_dir)
    path = Path(ckpt_dir) / PARAMS_FILE
    if not path.is_file():
        raise FlanJaxError(f"{path}: missing parameter file")
    return config, unflatten_params(load_file(str(path)))


def build_model(config: Any) -> Any:
    """The flax module for a config (Decoder, gemma.Gemma3 or the T5 model)."""
    family = family_of(config)
    if family == "decoder":
        from flan_jax.models.decoder import Decoder

        return Decoder(config)
    if family == "gemma3":
        from flan_jax.models.gemma import Gemma3

        return Gemma3(config)
    from flan_jax.models import t5

    return t5.T5(config)
