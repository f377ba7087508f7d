"""GGUF checkpoints -> HF-named float32 tensors + an HF config dict -> flan_jax params.

    config, tensors = load_gguf_hf("gemma-3-270m-q4_k_m.gguf")
    config["model_type"]                              -> "gemma3_text"
    tensors["model.layers.0.self_attn.q_proj.weight"] -> float32 [1024, 640]  (HF [out, in])

Two architectures (`general.architecture`): `gemma3` and `llama`. Every tensor is dequantized
to float32 (`gguf_file.GGUFFile.load`), renamed to the name transformers' Gemma3ForCausalLM /
LlamaForCausalLM state dict uses, and checked against the shape the metadata implies. Tensor
names follow llama.cpp's gguf-py `tensor_mapping.py`; the two fix-ups follow llama.cpp's
`convert_hf_to_gguf.py`, undone here as transformers' `modeling_gguf_pytorch_utils.py` does:

* gemma3: llama.cpp stores every RMSNorm weight as `1 + w` (Gemma scales by `1 + w`, llama.cpp by
  `w`), so `*norm.weight` gets `- 1` back to the HF parameter.
* llama: llama.cpp permutes the rows of q_proj / k_proj (per head, interleaving the two rotary
  halves) for its rotary layout; `unpermute_rows` is the inverse (see its docstring).

No `output.weight` tensor means tied embeddings (`tie_word_embeddings=True`, no lm_head).

Config values GGUF does not carry are filled with the architecture's constants (source: llama.cpp
`src/llama-model.cpp` for LLM_ARCH_GEMMA3, matching HF google/gemma-3-270m config.json):
gelu_pytorch_tanh MLP, query_pre_attn_scalar = head_dim (hidden / heads for the 62-layer 27B),
local (sliding-layer) rope base 10000,
every 6th layer global (`layer_types`), no logit soft-capping. Both the transformers 4 spelling
(rope_theta, rope_local_base_freq, rope_scaling) and the transformers 5 one (rope_parameters)
are written.

Errors (FlanJaxError naming the file and the key or tensor): unsupported architecture, missing
metadata key, missing/unexpected/wrongly shaped tensor, and those of `gguf_file.read_gguf`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError
from flan_jax.formats.gguf_file import GGUFFile, packaged_gemma3_270m, read_gguf  # noqa: F401  (flan_jax.models re-exports it)

ARCHITECTURES = ("gemma3", "llama")

# GGUF name -> HF name (llama.cpp gguf-py/gguf/tensor_mapping.py, read backwards).
GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
LAYER_NAMES = {
    "llama": {
        "attn_norm": "input_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    },
    "gemma3": {
        "attn_norm": "input_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
        "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
        "post_attention_norm": "post_attention_layernorm",
        "ffn_norm": "pre_feedforward_layernorm",
        "post_ffw_norm": "post_feedforward_layernorm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    },
}
_LAYER = re.compile(r"blk\.(\d+)\.(\w+)\.weight")

GEMMA3_27B_LAYERS = 62  # llama.cpp recognises Gemma 3 27B by its block count
GEMMA3_SLIDING_WINDOW_PATTERN = 6  # every 6th layer attends globally (llama.cpp set_swa_pattern(6))
GEMMA3_LOCAL_ROPE_THETA = 10000.0


def hf_name(gguf_name: str, arch: str) -> str | None:
    """'blk.3.attn_q.weight' -> 'model.layers.3.self_attn.q_proj.weight'; None if unknown."""
    if gguf_name in GLOBAL_NAMES:
        return GLOBAL_NAMES[gguf_name]
    m = _LAYER.fullmatch(gguf_name)
    if m and m.group(2) in LAYER_NAMES[arch]:
        return f"model.layers.{m.group(1)}.{LAYER_NAMES[arch][m.group(2)]}.weight"
    return None


def unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of llama.cpp's q/k row permutation (convert_hf_to_gguf.py `LlamaModel.permute`).

    llama.cpp writes `w.reshape(n_head, 2, Dh // 2, D).swapaxes(1, 2)`: within each head the
    row order [r0 .. r(Dh/2-1) | s0 .. s(Dh/2-1)] (HF: the two rotated halves) becomes
    [r0, s0, r1, s1, ...] (interleaved pairs). With Dh = 4, one head, rows a b c d in HF order:
    GGUF holds a c b d, and unpermute_rows(GGUF rows) gives back a b c d.
    """
    rows = w.shape[0]
    half = rows // n_head // 2
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _vocab_size(f: GGUFFile, arch: str) -> int:
    size = f.get(f"{arch}.vocab_size", None)
    if size is not None:
        return int(size)
    return len(f.get("tokenizer.ggml.tokens"))


def hf_config(f: GGUFFile) -> dict[str, Any]:
    """The HF config dict (LlamaConfig / Gemma3TextConfig keys) from the GGUF metadata."""
    arch = f.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise FlanJaxError(
            f"{f.path}: general.architecture {arch!r} is not supported (supported: {', '.join(ARCHITECTURES)})"
        )

    def g(key: str, *default: Any) -> Any:
        return f.get(f"{arch}.{key}", *default)

    heads = int(g("attention.head_count"))
    hidden = int(g("embedding_length"))
    config: dict[str, Any] = {
        "vocab_size": _vocab_size(f, arch),
        "hidden_size": hidden,
        "intermediate_size": int(g("feed_forward_length")),
        "num_hidden_layers": int(g("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(g("attention.head_count_kv", heads)),
        "rms_norm_eps": float(g("attention.layer_norm_rms_epsilon")),
        "max_position_embeddings": int(g("context_length")),
        "tie_word_embeddings": "output.weight" not in f.tensors,
        "torch_dtype": "float32",
    }
    for hf_key, gguf_key in (("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"),
                             ("pad_token_id", "padding_token_id")):
        value = f.get(f"tokenizer.ggml.{gguf_key}", None)
        if value is not None:
            config[hf_key] = int(value)
    if arch == "llama":
        theta = float(g("rope.freq_base", 10000.0))
        if "rope_freqs.weight" in f.tensors or g("rope.scaling.type", "none") not in ("none",):
            raise FlanJaxError(f"{f.path}: llama rope scaling (rope_freqs.weight / llama.rope.scaling.*) is not supported")
        config.update(
            architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
            head_dim=int(g("rope.dimension_count", hidden // heads)),
            rope_theta=theta, rope_scaling=None,
            rope_parameters={"rope_type": "default", "rope_theta": theta},
            attention_bias=False, mlp_bias=False,
        )
        return config
    head_dim = int(g("attention.key_length", hidden // heads))
    n_layers = config["num_hidden_layers"]
    theta = float(g("rope.freq_base", 1_000_000.0))
    scaling = None
    if g("rope.scaling.type", "none") == "linear":
        scaling = {"rope_type": "linear", "factor": float(g("rope.scaling.factor"))}
    elif g("rope.scaling.type", "none") != "none":
        raise FlanJaxError(f"{f.path}: gemma3.rope.scaling.type {g('rope.scaling.type')!r} is not supported")
    config.update(
        architectures=["Gemma3ForCausalLM"], model_type="gemma3_text",
        head_dim=head_dim,
        hidden_activation="gelu_pytorch_tanh",
        # llama.cpp's attention scale: 1/sqrt(hidden/heads) for 27B, 1/sqrt(head_dim) otherwise
        # (HF configs: 168 for 27B, 256 = head_dim for 270M..12B).
        query_pre_attn_scalar=hidden // heads if n_layers == GEMMA3_27B_LAYERS else head_dim,
        sliding_window=int(g("attention.sliding_window")),
        sliding_window_pattern=GEMMA3_SLIDING_WINDOW_PATTERN,
        layer_types=[
            "full_attention" if (i + 1) % GEMMA3_SLIDING_WINDOW_PATTERN == 0 else "sliding_attention"
            for i in range(n_layers)
        ],
        rope_theta=theta, rope_local_base_freq=GEMMA3_LOCAL_ROPE_THETA, rope_scaling=scaling,
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": theta, **(scaling or {})},
            "sliding_attention": {"rope_type": "default", "rope_theta": GEMMA3_LOCAL_ROPE_THETA},
        },
        final_logit_softcapping=None, attn_logit_softcapping=None, attention_bias=False,
    )
    return config


def _expected_shapes(config: dict[str, Any], arch: str) -> dict[str, tuple[int, ...]]:
    D, F, V = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    H, K, Dh = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    per_layer = {
        "input_layernorm": (D,), "post_attention_layernorm": (D,),
        "self_attn.q_proj": (H * Dh, D), "self_attn.k_proj": (K * Dh, D),
        "self_attn.v_proj": (K * Dh, D), "self_attn.o_proj": (D, H * Dh),
        "mlp.gate_proj": (F, D), "mlp.up_proj": (F, D), "mlp.down_proj": (D, F),
    }
    if arch == "gemma3":
        per_layer.update({"self_attn.q_norm": (Dh,), "self_attn.k_norm": (Dh,),
                          "pre_feedforward_layernorm": (D,), "post_feedforward_layernorm": (D,)})
    shapes = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
    if not config["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (V, D)
    for i in range(config["num_hidden_layers"]):
        shapes.update({f"model.layers.{i}.{k}.weight": s for k, s in per_layer.items()})
    return shapes


def hf_tensors(f: GGUFFile, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """{HF name: float32 array} for every tensor of `f`, with the norm / permutation fix-ups."""
    arch = f.get("general.architecture")
    expected = _expected_shapes(config, arch)
    names = {}
    for name in f.tensors:
        target = hf_name(name, arch)
        if target is None or target not in expected:
            raise FlanJaxError(
                f"{f.path}: unexpected tensor {name!r} for {arch} with {config['num_hidden_layers']} layers"
            )
        names[target] = name
    missing = [n for n in expected if n not in names]
    if missing:
        raise FlanJaxError(f"{f.path}: missing tensor for {missing[0]!r}")
    out: dict[str, np.ndarray] = {}
    for target, shape in expected.items():
        source = names[target]
        if f.tensors[source].shape != shape:
            raise FlanJaxError(
                f"{f.path}: tensor {source!r} has shape {list(f.tensors[source].shape)}, "
                f"the metadata implies {list(shape)}"
            )
        w = f.load(source)
        if arch == "gemma3" and source.endswith("norm.weight"):
            w = w - np.float32(1.0)
        elif arch == "llama" and ".attn_q." in source:
            w = unpermute_rows(w, config["num_attention_heads"])
        elif arch == "llama" and ".attn_k." in source:
            w = unpermute_rows(w, config["num_key_value_heads"])
        out[target] = w
    return out


def load_gguf_hf(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(HF config dict, {HF tensor name: float32 array}) of a GGUF checkpoint."""
    f = read_gguf(path)
    config = hf_config(f)
    return config, hf_tensors(f, config)


def load_gguf(path: str | os.PathLike, **overrides: Any) -> tuple[Any, dict[str, Any]]:
    """(flan_jax config, float32 params) of a GGUF checkpoint, via the HF converter of its family.

    llama -> `hf_llama.convert_hf_llama`; gemma3 -> `hf_gemma` (the Gemma model's converter).
    `overrides` are config fields GGUF does not describe (scan_layers, dtype, ...).
    """
    f = read_gguf(path)
    config = hf_config(f)  # the converter is found before ~15 s of dequantizing
    if config["model_type"] == "llama":
        from flan_jax.models.hf_llama import convert_hf_llama

        return convert_hf_llama(config, hf_tensors(f, config), f.path, **overrides)
    from flan_jax.models import hf_gemma

    return hf_gemma.params_from_hf(hf_tensors(f, config), config, where=str(f.path), **overrides)
