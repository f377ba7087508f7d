"""The layers of the T5 encoder-decoder (`models/t5.py`): relative position bias, attention,
MLP and the encoder and decoder layers, each configured by the whole `T5Config`.

Shape letters: B batch, L query length, S key length, D emb_dim, H heads, Dh head_dim,
F mlp_dim. No biases anywhere; no 1/sqrt(Dh) in attention (t5x folds it into the query
initialisation); dropout on sub-layer outputs, not on the attention probabilities.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.models.attention import dot_product_attention
from flan_jax.models.layers import DenseGeneral, RMSNorm, with_logical_constraint

if TYPE_CHECKING:
    from flan_jax.models.t5 import T5Config

Array = jax.Array

ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=True),  # HF "gelu_new", t5x "gelu"
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "linear": lambda x: x,
}



def relative_position_bucket(
    relative_position: Array, *, bidirectional: bool, num_buckets: int, max_distance: int
) -> Array:
    """Maps key_position - query_position to a bucket id in [0, num_buckets), as Mesh TF/HF.

    Half the buckets (per direction when bidirectional) are exact small distances, the rest
    log-spaced up to `max_distance`, beyond which all distances share the last bucket. The
    log-spaced part is tabulated once in numpy float32 (bit-identical to HF's float32 torch
    arithmetic, checked in the tests) and gathered, so XLA cannot re-round it.

    Worked example (bidirectional, num_buckets=32, max_distance=128):
        relative_position = [-200, -20, -1, 0, 1, 7, 8, 20, 200]
        bucket            = [  15,  10,  1, 0, 17, 23, 24, 26, 31]
    """
    buckets = num_buckets
    offset = jnp.zeros_like(relative_position)
    if bidirectional:
        buckets //= 2
        offset = jnp.where(relative_position > 0, buckets, 0)
        distance = jnp.abs(relative_position)
    else:
        distance = -jnp.minimum(relative_position, 0)
    max_exact = buckets // 2
    table_size = max(max_distance, max_exact) + 1
    n = np.arange(table_size)
    scaled = np.log(np.maximum(n, max_exact).astype(np.float32) / np.float32(max_exact))
    scaled = scaled / np.float32(math.log(max_distance / max_exact)) * np.float32(buckets - max_exact)
    large = np.minimum(max_exact + scaled.astype(np.int64), buckets - 1)
    table = np.where(n < max_exact, n, large).astype(np.int32)
    return offset + jnp.asarray(table)[jnp.minimum(distance, table_size - 1)]


class RelativePositionBias(nn.Module):
    """Learned per-head bias from bucketed key - query positions: [B, H, L, S] float32."""

    config: T5Config
    bidirectional: bool

    @nn.compact
    def __call__(self, query_positions: Array, key_positions: Array) -> Array:
        c = self.config
        table = self.param(
            "rel_embedding",
            nn.with_logical_partitioning(nn.initializers.normal(1.0), ("heads", "relpos_buckets")),
            (c.num_heads, c.relative_attention_num_buckets),
            jnp.float32,
        )
        # [B, 1, S] - [B, L, 1] -> [B, L, S]
        relative = key_positions[:, None, :] - query_positions[:, :, None]
        bucket = relative_position_bucket(
            relative,
            bidirectional=self.bidirectional,
            num_buckets=c.relative_attention_num_buckets,
            max_distance=c.relative_attention_max_distance,
        )
        # table [H, buckets] gathered at [B, L, S] -> [H, B, L, S] -> [B, H, L, S]
        return jnp.moveaxis(jnp.take(table, bucket, axis=1), 0, 1)


def _dense(c: T5Config, features: Any, axes: tuple[str, ...], name: str, *, num_in: int = 1,
           scale: float = 1.0) -> DenseGeneral:
    init = nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")
    return DenseGeneral(features, axes, num_in=num_in, kernel_init=init,
                        dtype=c.compute_dtype, name=name)


class Attention(nn.Module):
    """Multi-head attention without biases or 1/sqrt(Dh) scaling (T5)."""

    config: T5Config

    def setup(self) -> None:
        c = self.config
        heads = (c.num_heads, c.head_dim)
        # The 1/sqrt(Dh) of dot-product attention lives in the query initialisation.
        self.query = _dense(c, heads, ("embed", "heads", "head_dim"), "query", scale=1.0 / c.head_dim)
        self.key = _dense(c, heads, ("embed", "heads", "head_dim"), "key")
        self.value = _dense(c, heads, ("embed", "heads", "head_dim"), "value")
        self.out = _dense(c, c.emb_dim, ("heads", "head_dim", "embed"), "out", num_in=2)

    def project_kv(self, x: Array) -> tuple[Array, Array]:
        # x [B, S, D] -> k, v [B, S, H, Dh]
        axes = ("batch", "length", "heads", "head_dim")
        return (with_logical_constraint(self.key(x), axes),
                with_logical_constraint(self.value(x), axes))

    def attend(self, x: Array, key: Array, value: Array, mask: Array, bias: Array | None) -> Array:
        # x [B, L, D]; key/value [B, S, H, Dh]; mask [B, 1, L, S]; bias [B|1, H, L, S]
        query = with_logical_constraint(self.query(x), ("batch", "length", "heads", "head_dim"))
        out = dot_product_attention(query, key, value, mask=mask, bias=bias, scale=1.0)
        out = with_logical_constraint(out, ("batch", "length", "heads", "head_dim"))
        return self.out(out)  # [B, L, D]

    def __call__(self, x: Array, context: Array, mask: Array, bias: Array | None) -> Array:
        key, value = self.project_kv(context)
        return self.attend(x, key, value, mask, bias)


class MLP(nn.Module):
    """Gated (several activations multiplied, e.g. gelu * linear) or plain T5 feed-forward."""

    config: T5Config
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:
        c = self.config
        acts = c.mlp_activations
        hidden = None
        for i, act in enumerate(acts):
            name = f"wi_{i}" if len(acts) > 1 else "wi"
            h = ACTIVATIONS[act](_dense(c, c.mlp_dim, ("embed", "mlp"), name)(x))
            hidden = h if hidden is None else hidden * h
        hidden = with_logical_constraint(hidden, ("batch", "length", "mlp"))  # [B, L, F]
        hidden = nn.Dropout(c.dropout_rate)(hidden, deterministic=self.deterministic)
        return _dense(c, c.emb_dim, ("mlp", "embed"), "wo")(hidden)


def norm(c: T5Config, name: str) -> RMSNorm:
    return RMSNorm(eps=c.norm_eps, dtype=c.compute_dtype, name=name)


def _residual(c: T5Config, x: Array, y: Array, deterministic: bool) -> Array:
    y = nn.Dropout(c.dropout_rate)(y, deterministic=deterministic)
    return with_logical_constraint(x + y, ("batch", "length", "embed"))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + feed-forward. `(x, per_layer, shared) -> (x, {})` so the
    same signature serves an unrolled loop and `nn.scan`."""

    config: T5Config
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: Array, per_layer: Mapping[str, Array], shared: Mapping[str, Array]):
        c, det = self.config, self.deterministic
        h = norm(c, "pre_attention_layer_norm")(x)
        h = Attention(c, name="attention")(h, h, shared["mask"], shared["bias"])
        x = _residual(c, x, h, det)
        h = MLP(c, det, name="mlp")(norm(c, "pre_mlp_layer_norm")(x))
        return _residual(c, x, h, det), {}


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention, feed-forward; three modes with one param tree.

    mode "full":     x [B, L, D] -> x; shared = self_mask, self_bias, cross_mask, encoded.
    mode "cross_kv": x = encoded [B, S, D] unchanged; returns this layer's cross keys/values.
    mode "step":     x [B, 1, D] at position shared["index"]; per_layer holds this layer's
                     cache (self_key/self_value [B, T, H, Dh], cross_key/cross_value); returns
                     the updated self_key/self_value.
    """

    config: T5Config
    mode: str = "full"
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: Array, per_layer: Mapping[str, Array], shared: Mapping[str, Array]):
        c, det = self.config, self.deterministic
        self_attention = Attention(c, name="self_attention")
        cross_attention = Attention(c, name="encoder_decoder_attention")
        if self.mode == "cross_kv":
            key, value = cross_attention.project_kv(x)
            return x, {"cross_key": key, "cross_value": value}
        h = norm(c, "pre_self_attention_layer_norm")(x)
        new_cache = {}
        if self.mode == "step":
            key, value = self_attention.project_kv(h)  # [B, 1, H, Dh]
            start = (0, shared["index"], 0, 0)
            key = jax.lax.dynamic_update_slice(per_layer["self_key"], key.astype(per_layer["self_key"].dtype), start)
            value = jax.lax.dynamic_update_slice(per_layer["self_value"], value.astype(per_layer["self_value"].dtype), start)
            new_cache = {"self_key": key, "self_value": value}
            h = self_attention.attend(h, key, value, shared["self_mask"], shared["self_bias"])
        else:
            h = self_attention(h, h, shared["self_mask"], shared["self_bias"])
        x = _residual(c, x, h, det)
        h = norm(c, "pre_cross_attention_layer_norm")(x)
        if self.mode == "step":
            h = cross_attention.attend(h, per_layer["cross_key"], per_layer["cross_value"],
                                       shared["cross_mask"], None)
        else:
            h = cross_attention(h, shared["encoded"], shared["cross_mask"], None)
        x = _residual(c, x, h, det)
        h = MLP(c, det, name="mlp")(norm(c, "pre_mlp_layer_norm")(x))
        return _residual(c, x, h, det), new_cache
