"""Convert HF transformers Llama checkpoints (config.json + *.safetensors) to and from flan_jax.

Only safetensors are read: pickled `*.bin` / `*.pt` weights can run code on load, and
`auto_map` configs ask for remote code; both are refused with a FlanJaxError naming the file.

Weight layouts (HF stores Linear weights as [out, in]; our kernels are [in, out...]):
    model.embed_tokens.weight                 [V, D]      -> embed/embedding [V, D]
    model.layers.i.self_attn.q_proj.weight    [H*Dh, D]   -> layers_i/attention/query/kernel [D, H, Dh]
    model.layers.i.self_attn.{k,v}_proj.weight[K*Dh, D]   -> .../{key,value}/kernel [D, K, Dh]
    model.layers.i.self_attn.o_proj.weight    [D, H*Dh]   -> .../out/kernel [H, Dh, D]
    model.layers.i.mlp.{gate,up}_proj.weight  [F, D]      -> layers_i/mlp/{gate,up}/kernel [D, F]
    model.layers.i.mlp.down_proj.weight       [D, F]      -> layers_i/mlp/down/kernel [F, D]
    model.layers.i.input_layernorm.weight     [D]         -> layers_i/attention_norm/scale
    model.layers.i.post_attention_layernorm.weight [D]    -> layers_i/mlp_norm/scale
    model.norm.weight                         [D]         -> final_norm/scale
    lm_head.weight                            [V, D]      -> lm_head/kernel [D, V] (untied only; a
                                                             tied config whose file holds a head unlike
                                                             the embedding is untied, as transformers does)
HF's rotary layout (rotate half) is the one `layers.rotary_embedding` uses, so q/k need no
permutation.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError
from flan_jax.models.decoder import DecoderConfig
from flan_jax.models.hf_config import FLAN_JAX_TOKEN_IDS, read_hf_config, read_safetensors, write_token_ids
from flan_jax.models.params_io import atomic_directory

IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)
log = logging.getLogger("flan_jax.models")


def _rope_fields(config: dict[str, Any], path: Path) -> dict[str, Any]:
    """rope_theta and rope_llama3_scaling from either transformers 4 or 5 config spellings."""
    rope = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or {}
    theta = float(config.get("rope_theta", rope.get("rope_theta", 10000.0)))
    llama3 = None
    for spec in (rope, scaling):
        kind = spec.get("rope_type", spec.get("type", "default"))
        if kind == "llama3":
            try:
                llama3 = (float(spec["factor"]), float(spec["low_freq_factor"]), float(spec["high_freq_factor"]),
                          int(spec["original_max_position_embeddings"]))
            except KeyError as e:
                raise FlanJaxError(f"{path}: llama3 rope scaling lacks {e.args[0]!r}") from e
        elif kind != "default":
            raise FlanJaxError(f"{path}: rope type {kind!r} is not supported (default and llama3 only)")
    return {"rope_theta": theta, "rope_llama3_scaling": llama3}


def config_from_hf(config: dict[str, Any], path: Path, **overrides: Any) -> DecoderConfig:
    """DecoderConfig from a HF Llama config dict; unsupported variants raise naming `path`."""
    archs = config.get("architectures") or []
    if config.get("model_type") != "llama" and "LlamaForCausalLM" not in archs:
        raise FlanJaxError(
            f"{path}: model_type {config.get('model_type')!r} / architectures {archs} is not a Llama model"
        )
    for flag in ("attention_bias", "mlp_bias"):
        if config.get(flag):
            raise FlanJaxError(f"{path}: {flag}=true is not supported")
    if config.get("hidden_act", "silu") != "silu":
        raise FlanJaxError(f"{path}: hidden_act {config['hidden_act']!r} is not supported (silu only)")
    try:
        heads = int(config["num_attention_heads"])
        fields = dict(
            vocab_size=int(config["vocab_size"]),
            emb_dim=int(config["hidden_size"]),
            num_heads=heads,
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
            mlp_dim=int(config["intermediate_size"]),
            num_layers=int(config["num_hidden_layers"]),
            **_rope_fields(config, path),
            norm_eps=float(config.get("rms_norm_eps", 1e-6)),
            tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        )
    except KeyError as e:
        raise FlanJaxError(f"{path}: missing field {e.args[0]!r}") from e
    fields.update(overrides)
    return DecoderConfig(**fields)


def load_hf_llama(model_dir: str | os.PathLike, **overrides: Any) -> tuple[DecoderConfig, dict[str, Any]]:
    """Reads a HF Llama directory; returns (config, float32 params for `Decoder`).

    `overrides` set DecoderConfig fields HF does not describe (scan_layers, remat, dtype,
    prefix_lm). Raises FlanJaxError naming the file and tensor on anything unexpected.
    """
    model_dir = Path(model_dir)
    config = read_hf_config(model_dir)
    tensors, origin = read_safetensors(model_dir)
    where = ", ".join(sorted({p.name for p in origin.values()}))
    return convert_hf_llama(config, tensors, model_dir / "config.json", origin=origin,
                            tensors_where=f"{model_dir}/{{{where}}}", **overrides)


def convert_hf_llama(
    config: dict[str, Any],
    tensors: dict[str, np.ndarray],
    source: Path,
    origin: dict[str, Path] | None = None,
    tensors_where: str | None = None,
    **overrides: Any,
) -> tuple[DecoderConfig, dict[str, Any]]:
    """`load_hf_llama` on in-memory HF data: a config dict and {HF name: float32 array}.

    `source` names the config in errors (config.json, or a GGUF file); `origin` maps each tensor
    to its file and `tensors_where` names the tensor files (default: `source`).
    """
    cfg = config_from_hf(config, source, **overrides)
    origin = origin if origin is not None else {name: source for name in tensors}
    missing_where = tensors_where or str(source)
    used: set[str] = set()

    def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in tensors:
            raise FlanJaxError(f"{missing_where}: missing tensor {name!r}")
        value = tensors[name]
        if value.shape != shape:
            raise FlanJaxError(
                f"{origin[name]}: tensor {name!r} has shape {list(value.shape)}, "
                f"{source.name} implies {list(shape)}"
            )
        used.add(name)
        return value

    D, V = cfg.emb_dim, cfg.vocab_size
    per_layer = [layer_from_hf(take, f"model.layers.{i}.", cfg, LLAMA_NORMS) for i in range(cfg.num_layers)]
    params: dict[str, Any] = {
        "embed": {"embedding": take("model.embed_tokens.weight", (V, D))},
        "final_norm": {"scale": take("model.norm.weight", (D,))},
    }
    head = tensors.get("lm_head.weight")
    if cfg.tie_embeddings and head is not None and not np.array_equal(head, params["embed"]["embedding"]):
        # tie_word_embeddings=true, yet the file holds a different head: transformers (5.x)
        # then does NOT tie and uses that head, so the model is untied here too
        log.warning("%s: tie_word_embeddings is true but lm_head.weight differs from the embedding; "
                    "untied, as transformers loads it", origin["lm_head.weight"])
        cfg = dataclasses.replace(cfg, tie_embeddings=False)
    if cfg.tie_embeddings:
        used.add("lm_head.weight")  # some tied checkpoints store a copy (equal): the table is used
    else:
        params["lm_head"] = {"kernel": take("lm_head.weight", (V, D)).T}
    unexpected = unexpected_tensor(tensors, used)
    if unexpected:
        raise FlanJaxError(f"{origin[unexpected]}: unexpected tensor {unexpected!r} for {cfg.num_layers} layers")
    return cfg, with_layers(cfg, params, per_layer)


def unexpected_tensor(names: Any, used: set[str], ignored: tuple[str, ...] = IGNORED_SUFFIXES) -> str | None:
    """The first (sorted) tensor name neither used nor ending in one of `ignored`, else None."""
    left = sorted(n for n in names if n not in used and not n.endswith(ignored))
    return left[0] if left else None


def with_layers(cfg: Any, params: dict[str, Any], per_layer: list[dict[str, Any]]) -> dict[str, Any]:
    """`params` plus the layers: stacked under "layers" (scan_layers) or as layers_<i>; contiguous."""
    if cfg.scan_layers:
        params["layers"] = _stack(per_layer)
    else:
        params.update({f"layers_{i}": layer for i, layer in enumerate(per_layer)})
    return _contiguous(params)


def _stack(trees: list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(trees[0], dict):
        return {k: _stack([t[k] for t in trees]) for k in trees[0]}
    return np.stack(trees)


def _contiguous(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _contiguous(v) for k, v in tree.items()}
    return np.ascontiguousarray(tree, dtype=np.float32)


def _layer(params: dict[str, Any], cfg: DecoderConfig, i: int) -> dict[str, Any]:
    if cfg.scan_layers:
        return _index(params["layers"], i)
    return params[f"layers_{i}"]


def _index(tree: Any, i: int) -> Any:
    return {k: _index(v, i) for k, v in tree.items()} if isinstance(tree, dict) else tree[i]


def hf_config_dict(cfg: DecoderConfig) -> dict[str, Any]:
    """The config.json content for `cfg` (transformers LlamaConfig fields)."""
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_llama3_scaling is not None:
        factor, low, high, original = cfg.rope_llama3_scaling
        rope.update(rope_type="llama3", factor=factor, low_freq_factor=low, high_freq_factor=high,
                    original_max_position_embeddings=original)
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.emb_dim,
        "intermediate_size": cfg.mlp_dim,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_parameters": rope,
        "rope_scaling": None if cfg.rope_llama3_scaling is None else rope,  # transformers 4 spelling
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": False,
        "mlp_bias": False,
        "max_position_embeddings": 8192,
        "torch_dtype": "float32",
    }


# {HF tensor name under model.layers.<i>.: our parameter path inside layer i} for the norms.
LLAMA_NORMS: dict[str, tuple[str, ...]] = {
    "input_layernorm.weight": ("attention_norm", "scale"),
    "post_attention_layernorm.weight": ("mlp_norm", "scale"),
}


def layer_from_hf(take: Callable[[str, tuple[int, ...]], np.ndarray], prefix: str, cfg: Any,
                  norms: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """One decoder layer's params from HF tensors in the Llama layout, the inverse of the layer
    part of `hf_tensors`: q/k/v/o weights [H * Dh, D] -> kernels [D, H, Dh] ([H, Dh, D] for o),
    gate/up/down transposed, and the norms `norms` names (a q/k norm has Dh entries, others D).
    `take(name, shape)` returns the tensor `prefix + name`, checked against `shape`."""
    D, H, K, Dh, F = cfg.emb_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.mlp_dim
    layer: dict[str, Any] = {
        "attention": {
            "query": {"kernel": take(prefix + "self_attn.q_proj.weight", (H * Dh, D)).T.reshape(D, H, Dh)},
            "key": {"kernel": take(prefix + "self_attn.k_proj.weight", (K * Dh, D)).T.reshape(D, K, Dh)},
            "value": {"kernel": take(prefix + "self_attn.v_proj.weight", (K * Dh, D)).T.reshape(D, K, Dh)},
            "out": {"kernel": take(prefix + "self_attn.o_proj.weight", (D, H * Dh)).T.reshape(H, Dh, D)},
        },
        "mlp": {
            "gate": {"kernel": take(prefix + "mlp.gate_proj.weight", (F, D)).T},
            "up": {"kernel": take(prefix + "mlp.up_proj.weight", (F, D)).T},
            "down": {"kernel": take(prefix + "mlp.down_proj.weight", (D, F)).T},
        },
    }
    for name, path in norms.items():
        node = layer
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = take(prefix + name, (Dh,) if name.startswith("self_attn.") else (D,))
    return layer


def hf_tensors(cfg: Any, params: Any, norms: dict[str, tuple[str, ...]]) -> dict[str, np.ndarray]:
    """Our decoder params -> {HF tensor name: float32 array} in the Llama layout, which Gemma 3
    shares (hf_gemma adds its norms through `norms`): embeddings, final norm, the head when
    untied, per layer q/k/v/o ([D, H, Dh] kernels -> [H * Dh, D] weights), gate/up/down
    (transposed) and the layer norms `norms` names. cfg: DecoderConfig or Gemma3Config."""
    import flax.linen as nn

    params = nn.meta.unbox(params)
    D, H, K, Dh = cfg.emb_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    out: dict[str, np.ndarray] = {
        "model.embed_tokens.weight": np.asarray(params["embed"]["embedding"]),
        "model.norm.weight": np.asarray(params["final_norm"]["scale"]),
    }
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = np.asarray(params["lm_head"]["kernel"]).T
    for i in range(cfg.num_layers):
        layer, p = _layer(params, cfg, i), f"model.layers.{i}."
        att, mlp = layer["attention"], layer["mlp"]
        for name, path in norms.items():
            node = layer
            for key in path:
                node = node[key]
            out[p + name] = np.asarray(node)
        out[p + "self_attn.q_proj.weight"] = np.asarray(att["query"]["kernel"]).reshape(D, H * Dh).T
        out[p + "self_attn.k_proj.weight"] = np.asarray(att["key"]["kernel"]).reshape(D, K * Dh).T
        out[p + "self_attn.v_proj.weight"] = np.asarray(att["value"]["kernel"]).reshape(D, K * Dh).T
        out[p + "self_attn.o_proj.weight"] = np.asarray(att["out"]["kernel"]).reshape(H * Dh, D).T
        out[p + "mlp.gate_proj.weight"] = np.asarray(mlp["gate"]["kernel"]).T
        out[p + "mlp.up_proj.weight"] = np.asarray(mlp["up"]["kernel"]).T
        out[p + "mlp.down_proj.weight"] = np.asarray(mlp["down"]["kernel"]).T
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def save_hf_llama(cfg: DecoderConfig, params: Any, out_dir: str | os.PathLike,
                  token_ids: dict[str, Any] | None = None) -> Path:
    """Writes config.json + generation_config.json + model.safetensors (float32) that
    transformers' LlamaForCausalLM loads. `token_ids` (bos/eos/pad_token_id; default our
    vocabulary's: eos 1, pad 0, no BOS) go into both json files, so `generate` stops at EOS.

    Written atomically: nothing appears at `out_dir` unless every tensor was written.
    """
    from safetensors.numpy import save_file

    out = hf_tensors(cfg, params, LLAMA_NORMS)
    with atomic_directory(out_dir) as tmp:
        config = write_token_ids(tmp, hf_config_dict(cfg), FLAN_JAX_TOKEN_IDS if token_ids is None else token_ids)
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(out, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return Path(out_dir)
