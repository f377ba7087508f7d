"""HF `T5ForConditionalGeneration` checkpoints <-> flan_jax T5 parameters (safetensors only).

`load_hf_t5(dir)` reads `config.json` and `*.safetensors` (never pickled `*.bin`, which can
run code when loaded) and returns `(T5Config, params)` where `params` is the tree that goes
under "params" in `T5.apply`. `save_hf_t5(config, params, dir)` writes `config.json` and
`model.safetensors` that `transformers` loads. Both handle v1.1 / Flan-T5 (gated-GELU,
untied head) and the original T5 (ReLU, head tied to the embedding).

Tensor map (torch Linear weights are [out, in]; our kernels are [in..., out...]):
    shared.weight [V, D]                                  token_embedder/embedding [V, D]
    {stack}.block.{i}.layer.0.SelfAttention.q.weight [H*Dh, D]
                                              {stack}/layers_{i}/<self attn>/query/kernel [D, H, Dh]
    ...SelfAttention.o.weight [D, H*Dh]                   .../out/kernel [H, Dh, D]
    {stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight [buckets, H]
                                                          {stack}/relpos_bias/rel_embedding [H, buckets]
    ...DenseReluDense.wi_0.weight [F, D] (wi when ungated) .../mlp/wi_0/kernel [D, F]
    lm_head.weight [V, D] (untied only)                   logits_dense/kernel [D, V]
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError
from flan_jax.models.hf_config import T5_TOKEN_IDS, read_hf_config, read_safetensors, write_token_ids
from flan_jax.models.params_io import atomic_directory
from flan_jax.models.t5 import T5Config

_FF_PROJ = {
    "gated-gelu": ("gelu", "linear"),
    "gated-relu": ("relu", "linear"),
    "gated-silu": ("silu", "linear"),
    "relu": ("relu",),
}
# Present in some HF checkpoints, duplicates of other tensors or unused by the model.
_IGNORED = {
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
}


def _config_from_hf(hf: dict[str, Any], path: Path) -> T5Config:
    archs = hf.get("architectures") or ["T5ForConditionalGeneration"]
    # T5WithLMHeadModel: the class's old name, still in some original T5 configs.
    if hf.get("model_type") != "t5" or not {"T5ForConditionalGeneration", "T5WithLMHeadModel"} & set(archs):
        raise FlanJaxError(
            f"{path}: model_type {hf.get('model_type')!r}, architectures {archs}: only "
            "T5ForConditionalGeneration (model_type 't5') is supported"
        )
    proj = hf.get("feed_forward_proj", "relu")
    if proj not in _FF_PROJ:
        raise FlanJaxError(f"{path}: feed_forward_proj {proj!r} is not one of {sorted(_FF_PROJ)}")
    try:
        return T5Config(
            vocab_size=int(hf["vocab_size"]),
            emb_dim=int(hf["d_model"]),
            num_heads=int(hf["num_heads"]),
            head_dim=int(hf["d_kv"]),
            mlp_dim=int(hf["d_ff"]),
            num_encoder_layers=int(hf["num_layers"]),
            num_decoder_layers=int(hf.get("num_decoder_layers") or hf["num_layers"]),
            relative_attention_num_buckets=int(hf.get("relative_attention_num_buckets", 32)),
            relative_attention_max_distance=int(hf.get("relative_attention_max_distance", 128)),
            mlp_activations=_FF_PROJ[proj],
            tie_embeddings=_rescales_head(hf),
            dropout_rate=float(hf.get("dropout_rate", 0.1)),
            norm_eps=float(hf.get("layer_norm_epsilon", 1e-6)),
        )
    except KeyError as e:
        raise FlanJaxError(f"{path}: missing field {e.args[0]!r}") from None


def _rescales_head(hf: dict[str, Any]) -> bool:
    """Whether HF multiplies the decoder output by d_model**-0.5 before the head.

    transformers 4 ties (and rescales) when `tie_word_embeddings` is true; transformers 5
    always writes `tie_word_embeddings: true` and keeps the rescale in `scale_decoder_outputs`,
    deciding the tie by whether `lm_head.weight` is in the checkpoint.
    """
    return bool(hf.get("scale_decoder_outputs", hf.get("tie_word_embeddings", True)))


def _config_to_hf(c: T5Config) -> dict[str, Any]:
    proj = {v: k for k, v in _FF_PROJ.items()}.get(tuple(c.mlp_activations))
    if proj is None:
        raise FlanJaxError(f"T5Config.mlp_activations {c.mlp_activations} has no HF feed_forward_proj")
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": c.vocab_size,
        "d_model": c.emb_dim,
        "d_kv": c.head_dim,
        "d_ff": c.mlp_dim,
        "num_heads": c.num_heads,
        "num_layers": c.num_encoder_layers,
        "num_decoder_layers": c.num_decoder_layers,
        "relative_attention_num_buckets": c.relative_attention_num_buckets,
        "relative_attention_max_distance": c.relative_attention_max_distance,
        "feed_forward_proj": proj,
        "tie_word_embeddings": c.tie_embeddings,
        "scale_decoder_outputs": c.tie_embeddings,
        "dropout_rate": c.dropout_rate,
        "layer_norm_epsilon": c.norm_eps,
        "is_encoder_decoder": True,
    }


def _tensor_map(c: T5Config) -> Iterator[tuple[str, tuple[str, ...], str, tuple[int, ...]]]:
    """(HF name, our param path, layout kind, HF shape) for every tensor the model needs."""
    d, h, dh, f, v = c.emb_dim, c.num_heads, c.head_dim, c.mlp_dim, c.vocab_size
    yield "shared.weight", ("token_embedder", "embedding"), "same", (v, d)
    if not c.tie_embeddings:
        yield "lm_head.weight", ("logits_dense", "kernel"), "t", (v, d)
    ff_names = [f"wi_{i}" for i in range(len(c.mlp_activations))] if len(c.mlp_activations) > 1 else ["wi"]

    def attention(prefix: str, ours: tuple[str, ...]):
        for proj, name in (("q", "query"), ("k", "key"), ("v", "value")):
            yield f"{prefix}.{proj}.weight", ours + (name, "kernel"), "qkv", (h * dh, d)
        yield f"{prefix}.o.weight", ours + ("out", "kernel"), "o", (d, h * dh)

    def mlp(prefix: str, ours: tuple[str, ...]):
        for name in ff_names:
            yield f"{prefix}.DenseReluDense.{name}.weight", ours + ("mlp", name, "kernel"), "t", (f, d)
        yield f"{prefix}.DenseReluDense.wo.weight", ours + ("mlp", "wo", "kernel"), "t", (d, f)
        yield f"{prefix}.layer_norm.weight", ours + ("pre_mlp_layer_norm", "scale"), "same", (d,)

    for stack, n in (("encoder", c.num_encoder_layers), ("decoder", c.num_decoder_layers)):
        yield (f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
               (stack, "relpos_bias", "rel_embedding"), "t", (c.relative_attention_num_buckets, h))
        yield f"{stack}.final_layer_norm.weight", (stack, f"{stack}_norm", "scale"), "same", (d,)
        for i in range(n):
            p, ours = f"{stack}.block.{i}.layer", (stack, f"layers_{i}")
            if stack == "encoder":
                yield from attention(f"{p}.0.SelfAttention", ours + ("attention",))
                yield f"{p}.0.layer_norm.weight", ours + ("pre_attention_layer_norm", "scale"), "same", (d,)
                yield from mlp(f"{p}.1", ours)
            else:
                yield from attention(f"{p}.0.SelfAttention", ours + ("self_attention",))
                yield f"{p}.0.layer_norm.weight", ours + ("pre_self_attention_layer_norm", "scale"), "same", (d,)
                yield from attention(f"{p}.1.EncDecAttention", ours + ("encoder_decoder_attention",))
                yield f"{p}.1.layer_norm.weight", ours + ("pre_cross_attention_layer_norm", "scale"), "same", (d,)
                yield from mlp(f"{p}.2", ours)


def _to_ours(kind: str, w: np.ndarray, c: T5Config) -> np.ndarray:
    if kind == "qkv":  # [H*Dh, D] -> [D, H, Dh]
        return w.T.reshape(c.emb_dim, c.num_heads, c.head_dim)
    if kind == "o":  # [D, H*Dh] -> [H, Dh, D]
        return w.T.reshape(c.num_heads, c.head_dim, c.emb_dim)
    return w.T if kind == "t" else w


def _to_hf(kind: str, w: np.ndarray) -> np.ndarray:
    if kind in ("qkv", "o"):  # [D, H, Dh] -> [H*Dh, D];  [H, Dh, D] -> [D, H*Dh]
        return w.reshape(w.shape[0], -1).T if kind == "qkv" else w.reshape(-1, w.shape[-1]).T
    return w.T if kind == "t" else w


def _resolve_head(config: T5Config, tensors: dict[str, tuple[np.ndarray, Path]]) -> T5Config:
    """Picks our head layout from the HF rescale flag and whether `lm_head.weight` differs
    from `shared.weight`:
        rescale, no distinct lm_head    -> tie_embeddings=True (original T5)
        no rescale                      -> untied head = lm_head (or shared when absent)
        rescale and a distinct lm_head  -> untied head = lm_head * d_model**-0.5 (folded)
    """
    head = tensors.get("lm_head.weight")
    shared = tensors.get("shared.weight")
    distinct = head is not None and (shared is None or not np.array_equal(head[0], shared[0]))
    if config.tie_embeddings and not distinct:
        return config
    if not config.tie_embeddings and head is None and shared is not None:
        tensors["lm_head.weight"] = shared  # HF 5 drops a head that is the embedding
    fold = config.tie_embeddings
    if fold and head is not None:
        tensors["lm_head.weight"] = (head[0] * np.float32(config.emb_dim ** -0.5), head[1])
    return dataclasses.replace(config, tie_embeddings=False)


def load_hf_t5(directory: str | Path) -> tuple[T5Config, dict[str, Any]]:
    """Reads an HF T5 directory -> (T5Config, params) with float32 numpy params (unscanned
    layer layout; use `stack_layers` for a `scan_layers=True` config)."""
    directory = Path(directory)
    config_path = directory / "config.json"
    config = _config_from_hf(read_hf_config(directory), config_path)
    arrays, origin = read_safetensors(directory)
    tensors = {name: (array, origin[name]) for name, array in arrays.items()}
    config = _resolve_head(config, tensors)
    where = ", ".join(sorted({str(p) for _, p in tensors.values()}))
    params: dict[str, Any] = {}
    used = set()
    for hf_name, path, kind, shape in _tensor_map(config):
        if hf_name not in tensors:
            raise FlanJaxError(f"{where}: tensor {hf_name!r} is missing (needed by {config_path})")
        array, file = tensors[hf_name]
        if tuple(array.shape) != shape:
            raise FlanJaxError(
                f"{file}: tensor {hf_name!r} has shape {tuple(array.shape)}, "
                f"expected {shape} from {config_path}"
            )
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = np.ascontiguousarray(_to_ours(kind, array.astype(np.float32), config))
        used.add(hf_name)
    extra = sorted(set(tensors) - used - _IGNORED - {"lm_head.weight"})
    if extra:
        raise FlanJaxError(f"{tensors[extra[0]][1]}: unexpected tensor {extra[0]!r} for {config_path}")
    return config, params


def stack_layers(params: dict[str, Any], config: T5Config) -> dict[str, Any]:
    """Unrolled `layers_{i}` -> one `layers` subtree with a leading layer axis (scan layout)."""
    import jax

    out = dict(params)
    for stack, n in (("encoder", config.num_encoder_layers), ("decoder", config.num_decoder_layers)):
        sub = dict(params[stack])
        layers = [sub.pop(f"layers_{i}") for i in range(n)]
        sub["layers"] = jax.tree_util.tree_map(lambda *a: np.stack(a), *layers)
        out[stack] = sub
    return out


def unstack_layers(params: dict[str, Any], config: T5Config) -> dict[str, Any]:
    """Inverse of `stack_layers`; a no-op on unrolled params."""
    import jax

    out = dict(params)
    for stack, n in (("encoder", config.num_encoder_layers), ("decoder", config.num_decoder_layers)):
        sub = dict(params[stack])
        if "layers" in sub:
            stacked = sub.pop("layers")
            for i in range(n):
                sub[f"layers_{i}"] = jax.tree_util.tree_map(lambda a, i=i: a[i], stacked)
        out[stack] = sub
    return out


def save_hf_t5(config: T5Config, params: dict[str, Any], directory: str | Path,
               token_ids: dict[str, Any] | None = None) -> None:
    """Writes `config.json` + `generation_config.json` + `model.safetensors` (float32) loadable
    by transformers' `T5ForConditionalGeneration.from_pretrained(directory)`; `token_ids`
    default to T5's (pad 0, eos 1, decoder start 0). Written atomically: nothing
    appears at `directory` unless every tensor was written (an existing non-empty directory
    is refused)."""
    from flax.core import meta
    from safetensors.numpy import save_file

    params = unstack_layers(meta.unbox(params), config)
    tensors = {}
    for hf_name, path, kind, shape in _tensor_map(config):
        node = params
        for key in path:
            if key not in node:
                raise FlanJaxError(f"params: missing {'/'.join(path)} (for HF tensor {hf_name})")
            node = node[key]
        array = _to_hf(kind, np.asarray(node, dtype=np.float32))
        if array.shape != shape:
            raise FlanJaxError(f"params: {'/'.join(path)} has HF shape {array.shape}, expected {shape}")
        tensors[hf_name] = np.ascontiguousarray(array)
    with atomic_directory(directory) as tmp:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        hf = write_token_ids(tmp, _config_to_hf(config), T5_TOKEN_IDS if token_ids is None else token_ids)
        (tmp / "config.json").write_text(json.dumps(hf, indent=2) + "\n")
