"""Convert HF transformers Gemma 3 text checkpoints (Gemma3ForCausalLM) to and from flan_jax.

Accepted: config.json with model_type "gemma3_text", or "gemma3" whose `text_config` describes the
decoder and which has no `vision_config` (the multimodal models are refused). Keys missing from a
config take transformers' Gemma3TextConfig defaults (configuration_gemma3.py, v5.24), as the
published multimodal configs rely on them. Refused, with one line naming the key: logit
softcapping (attn_logit_softcapping / final_logit_softcapping, Gemma 2), bidirectional attention,
attention biases, other activations, rope types other than default/linear on global layers and
default on local layers.

Weight layouts (HF Linear weights are [out, in]; our kernels are [in, out...]; norms identical,
both store the w of x * (1 + w)):
    model.embed_tokens.weight                       [V, D]     -> embed/embedding [V, D]
    model.layers.i.input_layernorm.weight           [D]        -> layers_i/pre_attention_norm/scale
    model.layers.i.self_attn.q_proj.weight          [H*Dh, D]  -> layers_i/attention/query/kernel [D, H, Dh]
    model.layers.i.self_attn.{k,v}_proj.weight      [K*Dh, D]  -> .../{key,value}/kernel [D, K, Dh]
    model.layers.i.self_attn.{q,k}_norm.weight      [Dh]       -> .../{query,key}_norm/scale
    model.layers.i.self_attn.o_proj.weight          [D, H*Dh]  -> .../out/kernel [H, Dh, D]
    model.layers.i.post_attention_layernorm.weight  [D]        -> layers_i/post_attention_norm/scale
    model.layers.i.pre_feedforward_layernorm.weight [D]        -> layers_i/pre_mlp_norm/scale
    model.layers.i.mlp.{gate,up}_proj.weight        [F, D]     -> layers_i/mlp/{gate,up}/kernel [D, F]
    model.layers.i.mlp.down_proj.weight             [D, F]     -> layers_i/mlp/down/kernel [F, D]
    model.layers.i.post_feedforward_layernorm.weight[D]        -> layers_i/post_mlp_norm/scale
    model.norm.weight                               [D]        -> final_norm/scale
    lm_head.weight                                  [V, D]     -> lm_head/kernel [D, V] (untied only)
A `gemma3` checkpoint's text tensors are named language_model.model.* (or model.language_model.*)
and are read under the names above.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError
from flan_jax.models.gemma import FULL, SLIDING, Gemma3Config
from flan_jax.models.hf_config import read_hf_config, read_safetensors, write_token_ids
from flan_jax.models.hf_llama import layer_from_hf, unexpected_tensor, with_layers
from flan_jax.models.hf_llama import hf_tensors as llama_tensors
from flan_jax.models.params_io import atomic_directory

IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "rotary_emb.local_inv_freq", "rotary_emb.global_inv_freq")
# transformers Gemma3TextConfig defaults (models/gemma3/configuration_gemma3.py, v5.24.0)
HF_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131_072, "rms_norm_eps": 1e-6, "pad_token_id": 0, "eos_token_id": 1,
    "bos_token_id": 2, "tie_word_embeddings": True, "query_pre_attn_scalar": 256, "sliding_window": 4096,
    "sliding_window_pattern": 6, "rope_theta": 1_000_000.0, "rope_local_base_freq": 10_000.0,
}
# A gemma3 (multimodal) checkpoint's text tensors, renamed to Gemma3ForCausalLM's.
TEXT_PREFIXES = (("language_model.model.", "model."), ("model.language_model.", "model."),
                 ("language_model.lm_head.", "lm_head."))


def text_config(config: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The Gemma3TextConfig dict of a gemma3_text config or of a text-only gemma3 config."""
    kind = config.get("model_type")
    if kind == "gemma3":
        if config.get("vision_config") is not None:
            raise FlanJaxError(f"{where}: vision_config is set (multimodal Gemma 3); only the text decoder "
                               "(Gemma3ForCausalLM, model_type gemma3_text) is supported")
        inner = config.get("text_config")
        if not isinstance(inner, Mapping):
            raise FlanJaxError(f"{where}: model_type 'gemma3' without a text_config object")
        return {"model_type": "gemma3_text", **inner}
    if kind != "gemma3_text":
        raise FlanJaxError(f"{where}: model_type {kind!r} is not a Gemma 3 text model (gemma3_text)")
    return dict(config)


def _rope_fields(config: Mapping[str, Any], where: str) -> dict[str, float]:
    """rope_theta / rope_local_base_freq / rope_scaling_factor from transformers 4 or 5 spellings."""
    params = config.get("rope_parameters") or {}
    full = dict(params.get(FULL) or {})
    local = dict(params.get(SLIDING) or {})
    if config.get("rope_scaling"):  # transformers 4: applies to the global layers
        full = {**dict(config["rope_scaling"]), **full}
    theta = float(full.get("rope_theta", config.get("rope_theta", HF_DEFAULTS["rope_theta"])))
    local_default = config.get("rope_local_base_freq", HF_DEFAULTS["rope_local_base_freq"])
    local_theta = float(local.get("rope_theta", local_default))
    factor = 1.0
    kind = full.get("rope_type", full.get("type", "default"))
    if kind == "linear":
        if "factor" not in full:
            raise FlanJaxError(f"{where}: rope_scaling of type 'linear' lacks 'factor'")
        factor = float(full["factor"])
    elif kind != "default":
        raise FlanJaxError(f"{where}: rope_scaling type {kind!r} is not supported (default and linear only)")
    local_kind = local.get("rope_type", local.get("type", "default"))
    if local_kind != "default":
        raise FlanJaxError(f"{where}: rope_parameters.sliding_attention type {local_kind!r} is not supported")
    return {"rope_theta": theta, "rope_local_base_freq": local_theta, "rope_scaling_factor": factor}


def config_from_hf(config: Mapping[str, Any], where: str = "config.json", **overrides: Any) -> Gemma3Config:
    """Gemma3Config from a HF config dict (gemma3_text, or text-only gemma3); refuses unsupported
    variants with a FlanJaxError naming `where` and the config key."""
    given = text_config(config, where)
    c = {**HF_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}  # null -> the default
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if c.get(key) is not None:
            raise FlanJaxError(f"{where}: {key}={c[key]} is set; Gemma 3 has no logit softcapping "
                               "(a Gemma 2 config?)")
    for key in ("use_bidirectional_attention", "attention_bias"):
        if c.get(key):
            raise FlanJaxError(f"{where}: {key}=true is not supported")
    act = c.get("hidden_activation") or c.get("hidden_act")
    if act != "gelu_pytorch_tanh":
        raise FlanJaxError(f"{where}: hidden_activation {act!r} is not supported (gelu_pytorch_tanh only)")
    layer_types = c.get("layer_types")
    try:
        heads = int(c["num_attention_heads"])
        fields: dict[str, Any] = dict(
            vocab_size=int(c["vocab_size"]),
            emb_dim=int(c["hidden_size"]),
            num_heads=heads,
            num_kv_heads=int(c["num_key_value_heads"]),
            head_dim=int(c["head_dim"]),
            mlp_dim=int(c["intermediate_size"]),
            num_layers=int(c["num_hidden_layers"]),
            query_pre_attn_scalar=float(c["query_pre_attn_scalar"]),
            sliding_window=int(c["sliding_window"]),
            sliding_window_pattern=int(c["sliding_window_pattern"]),
            layer_types=None if layer_types is None else tuple(layer_types),
            **_rope_fields(c, where),
            norm_eps=float(c["rms_norm_eps"]),
            tie_embeddings=bool(c["tie_word_embeddings"]),
            max_position_embeddings=int(c["max_position_embeddings"]),
            pad_token_id=int(c["pad_token_id"]),
            eos_token_id=c["eos_token_id"] if isinstance(c["eos_token_id"], int) else tuple(c["eos_token_id"]),
            bos_token_id=int(c["bos_token_id"]),
        )
    except (TypeError, ValueError) as e:
        raise FlanJaxError(f"{where}: malformed Gemma 3 config ({e})") from e
    fields.update(overrides)
    try:
        return Gemma3Config(**fields)
    except ValueError as e:
        raise FlanJaxError(f"{where}: {e}") from e


def params_from_hf(
    tensors: Mapping[str, np.ndarray], config: Mapping[str, Any], *, where: str = "<in memory>",
    **overrides: Any,
) -> tuple[Gemma3Config, dict[str, Any]]:
    """Converts in-memory HF tensors + config to (Gemma3Config, float32 params for `Gemma3`).

    tensors: {HF tensor name: numpy array}, the names Gemma3ForCausalLM's state dict uses
        (e.g. "model.layers.0.self_attn.q_proj.weight" [H*Dh, D]; table above), any float dtype;
        a gemma3 checkpoint's "language_model.model.*" names are accepted too.
    config: the HF config.json dict (model_type "gemma3_text" or a text-only "gemma3").
    where: names the source in errors (a directory, a GGUF file).
    Norm weights are HF's w of x * (1 + w). llama.cpp's convert_hf_to_gguf.py (Gemma3Model,
    norm_shift = 1.0) stores 1 + w for every "*norm.weight" (q/k norms included): a GGUF reader
    must subtract 1 before calling this.
    overrides: Gemma3Config fields HF does not describe (scan_layers, remat, dtype).
    Raises FlanJaxError (one line naming `where` and the key or tensor) on an unsupported
    config, a missing, misshapen or unexpected tensor.
    """
    cfg = config_from_hf(config, where, **overrides)
    named = {}
    for name, value in tensors.items():
        for old, new in TEXT_PREFIXES:
            if name.startswith(old):
                name = new + name[len(old):]
                break
        named[name] = value
    used: set[str] = set()

    def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in named:
            raise FlanJaxError(f"{where}: missing tensor {name!r}")
        value = np.asarray(named[name])
        if value.shape != shape:
            raise FlanJaxError(f"{where}: tensor {name!r} has shape {list(value.shape)}, the config implies "
                               f"{list(shape)}")
        used.add(name)
        return value.astype(np.float32)

    D, V = cfg.emb_dim, cfg.vocab_size
    per_layer = [layer_from_hf(take, f"model.layers.{i}.", cfg, GEMMA3_NORMS) for i in range(cfg.num_layers)]
    params: dict[str, Any] = {
        "embed": {"embedding": take("model.embed_tokens.weight", (V, D))},
        "final_norm": {"scale": take("model.norm.weight", (D,))},
    }
    if cfg.tie_embeddings:
        used.add("lm_head.weight")  # some tied checkpoints store a copy; the table is used
    else:
        params["lm_head"] = {"kernel": take("lm_head.weight", (V, D)).T}
    unexpected = unexpected_tensor(named, used, IGNORED_SUFFIXES)
    if unexpected:
        raise FlanJaxError(f"{where}: unexpected tensor {unexpected!r} for {cfg.num_layers} layers")
    return cfg, with_layers(cfg, params, per_layer)


def load_hf_gemma(model_dir: str | os.PathLike, **overrides: Any) -> tuple[Gemma3Config, dict[str, Any]]:
    """Reads a HF Gemma 3 text directory (config.json + *.safetensors); see `params_from_hf`."""
    model_dir = Path(model_dir)
    config = read_hf_config(model_dir)
    config_from_hf(config, str(model_dir / "config.json"), **overrides)  # refuse a bad config before reading weights
    tensors, _ = read_safetensors(model_dir)
    return params_from_hf(tensors, config, where=str(model_dir), **overrides)


def hf_config_dict(cfg: Gemma3Config) -> dict[str, Any]:
    """The config.json content for `cfg` (transformers Gemma3TextConfig fields, v4 and v5 rope keys)."""
    full: dict[str, Any] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling_factor != 1.0:
        full.update(rope_type="linear", factor=cfg.rope_scaling_factor)
    layer_types = [FULL if g else SLIDING for g in cfg.global_layers]
    eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else list(cfg.eos_token_id)
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.emb_dim,
        "intermediate_size": cfg.mlp_dim,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": _number(cfg.query_pre_attn_scalar),
        "sliding_window": cfg.sliding_window,
        "sliding_window_pattern": cfg.sliding_window_pattern,
        "layer_types": layer_types,
        "rope_theta": cfg.rope_theta,  # transformers 4 spelling
        "rope_local_base_freq": cfg.rope_local_base_freq,
        "rope_scaling": None if cfg.rope_scaling_factor == 1.0 else {"rope_type": "linear",
                                                                     "factor": cfg.rope_scaling_factor},
        "rope_parameters": {FULL: full, SLIDING: {"rope_type": "default", "rope_theta": cfg.rope_local_base_freq}},
        "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": False,
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
        "max_position_embeddings": cfg.max_position_embeddings,
        "pad_token_id": cfg.pad_token_id,
        "eos_token_id": eos,
        "bos_token_id": cfg.bos_token_id,
        "torch_dtype": "float32",
    }


def _number(x: float) -> int | float:
    """256.0 -> 256: transformers' strict config wants an int where the value is integral."""
    return int(x) if float(x).is_integer() else x


# Gemma 3's norms on top of the Llama layout (hf_llama.hf_tensors).
GEMMA3_NORMS: dict[str, tuple[str, ...]] = {
    "input_layernorm.weight": ("pre_attention_norm", "scale"),
    "post_attention_layernorm.weight": ("post_attention_norm", "scale"),
    "pre_feedforward_layernorm.weight": ("pre_mlp_norm", "scale"),
    "post_feedforward_layernorm.weight": ("post_mlp_norm", "scale"),
    "self_attn.q_norm.weight": ("attention", "query_norm", "scale"),
    "self_attn.k_norm.weight": ("attention", "key_norm", "scale"),
}


def hf_tensors(cfg: Gemma3Config, params: Any) -> dict[str, np.ndarray]:
    """Our params -> {HF tensor name: float32 array} (inverse of `params_from_hf`)."""
    return llama_tensors(cfg, params, GEMMA3_NORMS)


def save_hf_gemma(cfg: Gemma3Config, params: Any, out_dir: str | os.PathLike) -> Path:
    """Writes config.json + generation_config.json (the config's bos/eos/pad ids) +
    model.safetensors (float32) that transformers' Gemma3ForCausalLM loads.

    Atomic: nothing appears at `out_dir` unless every file was written; a non-empty `out_dir`
    is refused (FlanJaxError)."""
    from safetensors.numpy import save_file

    out = hf_tensors(cfg, params)
    with atomic_directory(out_dir) as tmp:
        config = hf_config_dict(cfg)  # + generation_config.json: what transformers' generate reads
        config = write_token_ids(tmp, config, {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(out, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return Path(out_dir)
