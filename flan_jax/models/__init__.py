"""Models: the Llama-style decoder, the Gemma 3 text decoder, the T5 encoder-decoder, shared layers, sharding rules and
HF/checkpoint conversion.

Public names are resolved lazily (PEP 562), so `import flan_jax.models` loads neither JAX nor
any model module, registers nothing and reads no file; `flan_jax.models.Decoder` imports
`flan_jax.models.decoder` on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "Decoder": "decoder",
    "DecoderConfig": "decoder",
    "init_cache": "decoder",
    "Gemma3": "gemma",
    "Gemma3Config": "gemma",
    "T5": "t5",
    "T5Config": "t5",
    "LOGICAL_AXIS_RULES": "sharding",
    "logical_shardings": "sharding",
    "rules_for_mesh": "sharding",
    "load_hf_llama": "hf_llama",
    "save_hf_llama": "hf_llama",
    "load_hf_gemma": "hf_gemma",
    "save_hf_gemma": "hf_gemma",
    "load_gguf": "gguf_io",
    "load_gguf_hf": "gguf_io",
    "packaged_gemma3_270m": "gguf_io",
    "load_checkpoint": "params_io",
    "save_checkpoint": "params_io",
    "build_model": "params_io",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'flan_jax.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"flan_jax.models.{_PUBLIC[name]}"), name)
