"""T5 encoder-decoder (v1.1 / Flan-T5 and the original T5), feature format "enc_dec".

Consumes the t5x batch fields (docs/architecture.md) and returns float32 logits
[batch, decoder length, vocab]. Packing is built in: attention masks come from segment ids
and the relative position bias from `*_positions`, so two examples packed in one row give
the same logits as each alone. Parameter names follow t5x (`layers_0/attention/query`, ...);
`models/hf_t5.py` maps them to and from HF `T5ForConditionalGeneration` tensors.

Shape letters: B batch, L query length, S key length, D emb_dim, H heads, Dh head_dim,
F mlp_dim, V vocab, N layers.

T5 details kept on purpose: no biases anywhere; no 1/sqrt(Dh) in attention (t5x folds it
into the query initialisation, so checkpoints expect scale 1.0); one relative position bias
table per stack (encoder: bidirectional, decoder: causal), computed once and added in every
layer; with a tied head the decoder output is multiplied by D**-0.5 before the embedding.
Dropout applies to embeddings, sub-layer outputs and the final norm output, not to the
attention probabilities.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp

from flan_jax.errors import FlanJaxError
from flan_jax.models.attention import make_attention_mask
from flan_jax.models.layers import (
    REMAT_POLICIES,
    Embed,
    HeadKernel,
    OutputHead,
    remat,
    with_logical_constraint,
)
from flan_jax.models.t5_layers import ACTIVATIONS, DecoderLayer, EncoderLayer, RelativePositionBias, norm

Array = jax.Array

@gin.configurable
@dataclasses.dataclass(frozen=True)
class T5Config:
    """All T5 hyper-parameters; defaults are T5 v1.1 small. `dtype` is the compute dtype
    ("float32" or "bfloat16"); parameters are always stored in float32. `remat` is one of
    REMAT_POLICIES ("none", "full", "dots", "dots_no_batch"; True/False mean full/none)."""

    vocab_size: int = 32128
    emb_dim: int = 512
    num_heads: int = 6
    head_dim: int = 64
    mlp_dim: int = 1024
    num_encoder_layers: int = 8
    num_decoder_layers: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    mlp_activations: tuple[str, ...] = ("gelu", "linear")
    tie_embeddings: bool = False
    dropout_rate: float = 0.0
    norm_eps: float = 1e-6
    remat: str = "none"
    scan_layers: bool = False
    dtype: str = "float32"

    def __post_init__(self) -> None:
        # gin hands lists for tuple literals in some spellings; keep the config hashable.
        object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
        if isinstance(self.remat, bool):
            object.__setattr__(self, "remat", "full" if self.remat else "none")
        if self.remat not in REMAT_POLICIES:
            raise FlanJaxError(f"T5Config.remat: {self.remat!r} is not one of {sorted(REMAT_POLICIES)}")
        unknown = [a for a in self.mlp_activations if a not in ACTIVATIONS]
        if unknown:
            raise FlanJaxError(f"T5Config.mlp_activations: unknown {unknown}; known {sorted(ACTIVATIONS)}")

    @property
    def compute_dtype(self) -> Any:
        return jnp.dtype(self.dtype)


def _run_layers(c: T5Config, layer_cls: type, num_layers: int, x: Array,
                per_layer: Mapping[str, Array], shared: Mapping[str, Array], **attrs: Any):
    """Applies `num_layers` layers, scanned (params stacked on a leading 'layers' axis, named
    `layers`) or unrolled (`layers_0`, `layers_1`, ...). `per_layer` arrays have a leading
    layer axis; the layers' extra outputs come back stacked the same way."""
    layer_cls = remat(layer_cls, c.remat, scan_layers=c.scan_layers)
    if c.scan_layers:
        scanned = nn.scan(
            layer_cls,
            variable_axes={"params": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=(0, nn.broadcast),
            length=num_layers,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )
        return scanned(c, name="layers", **attrs)(x, per_layer, shared)
    outputs = []
    for i in range(num_layers):
        layer_inputs = jax.tree_util.tree_map(lambda a, i=i: a[i], per_layer)
        x, out = layer_cls(c, name=f"layers_{i}", **attrs)(x, layer_inputs, shared)
        outputs.append(out)
    return x, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *outputs)


class Encoder(nn.Module):
    config: T5Config

    @nn.compact
    def __call__(self, x: Array, segment_ids: Array, positions: Array, deterministic: bool) -> Array:
        # x: embedded tokens [B, S, D] -> encoded [B, S, D]
        c = self.config
        bias = RelativePositionBias(c, bidirectional=True, name="relpos_bias")(positions, positions)
        shared = {"mask": make_attention_mask(segment_ids, segment_ids, causal=False), "bias": bias}
        x = nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)
        x = with_logical_constraint(x, ("batch", "length", "embed"))
        x, _ = _run_layers(c, EncoderLayer, c.num_encoder_layers, x, {}, shared,
                           deterministic=deterministic)
        x = norm(c, "encoder_norm")(x)
        return nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)


class Decoder(nn.Module):
    """Decoder stack; `mode` selects the full pass, cross key/value precompute or one step."""

    config: T5Config

    @nn.compact
    def __call__(self, mode: str, x: Array, shared: dict[str, Array],
                 per_layer: Mapping[str, Array] | None = None, deterministic: bool = True):
        c = self.config
        if mode == "cross_kv":
            _, kv = _run_layers(c, DecoderLayer, c.num_decoder_layers, x, {}, {}, mode=mode)
            return kv
        bias_module = RelativePositionBias(c, bidirectional=False, name="relpos_bias")
        shared = dict(shared)
        shared["self_bias"] = bias_module(shared.pop("query_positions"), shared.pop("key_positions"))
        x = nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)
        x = with_logical_constraint(x, ("batch", "length", "embed"))
        x, new_cache = _run_layers(c, DecoderLayer, c.num_decoder_layers, x, per_layer or {},
                                   shared, mode=mode, deterministic=deterministic)
        x = norm(c, "decoder_norm")(x)
        return nn.Dropout(c.dropout_rate)(x, deterministic=deterministic), new_cache


def _segments_and_positions(tokens: Array, segment_ids: Array | None, positions: Array | None,
                            *, pad_from_tokens: bool) -> tuple[Array, Array]:
    """Fills in unpacked defaults: segment 1 on tokens != 0 (the encoder) or everywhere (the
    decoder, whose inputs start with the pad id as BOS), positions 0..L-1."""
    if segment_ids is None:
        segment_ids = (tokens != 0) if pad_from_tokens else jnp.ones_like(tokens, dtype=bool)
        segment_ids = segment_ids.astype(jnp.int32)
    if positions is None:
        positions = jnp.broadcast_to(jnp.arange(tokens.shape[1], dtype=jnp.int32), tokens.shape)
    return segment_ids, positions


class T5(nn.Module):
    """The encoder-decoder. `apply({"params": p}, batch)` -> logits [B, L, V] float32.

    Batch fields (int32): encoder_input_tokens [B, S] and decoder_input_tokens [B, L]
    (required); *_segment_ids and *_positions for packed rows. Unpacked rows may omit them:
    encoder padding is then tokens == 0, decoder padding decoder_target_tokens == 0 (when
    given), positions 0..len-1. Dropout needs `enable_dropout=True` and a "dropout" rng.

    Generation: `encode` once, `init_decode_cache` (cross keys/values computed once, empty
    self-attention keys/values of `max_decode_length`), then `decode_step` per token.
    """

    config: T5Config
    FEATURE_FORMAT = "enc_dec"

    def setup(self) -> None:
        c = self.config
        self.token_embedder = Embed(c.vocab_size, c.emb_dim, dtype=c.compute_dtype)
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        if not c.tie_embeddings:
            init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
            self.logits_dense = HeadKernel(c.vocab_size, kernel_init=init)

    def __call__(self, batch: Mapping[str, Array], *, enable_dropout: bool = False,
                 return_hidden: bool = False) -> Array | tuple[Array, OutputHead]:
        enc_tokens = batch["encoder_input_tokens"]
        enc_segments, _ = _segments_and_positions(
            enc_tokens, batch.get("encoder_segment_ids"), None, pad_from_tokens=True)
        encoded = self.encode(enc_tokens, batch.get("encoder_segment_ids"),
                              batch.get("encoder_positions"), enable_dropout=enable_dropout)
        dec_segments = batch.get("decoder_segment_ids")
        if dec_segments is None and "decoder_target_tokens" in batch:
            # Unpacked: padding is where there is no target (the inputs start with BOS = 0).
            dec_segments = (batch["decoder_target_tokens"] != 0).astype(jnp.int32)
        return self.decode(encoded, enc_segments, batch["decoder_input_tokens"],
                           dec_segments, batch.get("decoder_positions"),
                           enable_dropout=enable_dropout, return_hidden=return_hidden)

    def encode(self, encoder_input_tokens: Array, encoder_segment_ids: Array | None = None,
               encoder_positions: Array | None = None, *, enable_dropout: bool = False) -> Array:
        """Token ids [B, S] -> encoded [B, S, D] (compute dtype)."""
        segments, positions = _segments_and_positions(
            encoder_input_tokens, encoder_segment_ids, encoder_positions, pad_from_tokens=True)
        x = self.token_embedder(encoder_input_tokens)
        return self.encoder(x, segments, positions, deterministic=not enable_dropout)

    def decode(self, encoded: Array, encoder_segment_ids: Array, decoder_input_tokens: Array,
               decoder_segment_ids: Array | None = None, decoder_positions: Array | None = None,
               *, enable_dropout: bool = False,
               return_hidden: bool = False) -> Array | tuple[Array, OutputHead]:
        """Teacher-forced decoder pass -> logits [B, L, V] float32, or with `return_hidden`
        (decoder output [B, L, D], the `OutputHead`) for `loss.head_cross_entropy_loss`.
        `encoder_segment_ids` [B, S] is 1 on real encoder tokens, 0 on padding when unpacked."""
        segments, positions = _segments_and_positions(
            decoder_input_tokens, decoder_segment_ids, decoder_positions, pad_from_tokens=False)
        shared = {
            "encoded": encoded,
            "self_mask": make_attention_mask(segments, segments, causal=True),
            "cross_mask": make_attention_mask(segments, encoder_segment_ids, causal=False),
            "query_positions": positions,
            "key_positions": positions,
        }
        x = self.token_embedder(decoder_input_tokens)
        x, _ = self.decoder("full", x, shared, deterministic=not enable_dropout)
        return (x, self.output_head()) if return_hidden else self._logits(x)

    def init_decode_cache(self, encoded: Array, encoder_segment_ids: Array,
                          max_decode_length: int) -> dict[str, Array]:
        """Cache for `decode_step`: cross keys/values [N, B, S, H, Dh] computed once from
        `encoded`, zero self keys/values [N, B, max_decode_length, H, Dh], index 0."""
        c = self.config
        cross = self.decoder("cross_kv", encoded, {})
        batch = encoded.shape[0]
        zeros = jnp.zeros((c.num_decoder_layers, batch, max_decode_length, c.num_heads, c.head_dim),
                          c.compute_dtype)
        return {
            "self_key": zeros, "self_value": zeros,
            "cross_key": cross["cross_key"], "cross_value": cross["cross_value"],
            "encoder_segment_ids": encoder_segment_ids.astype(jnp.int32),
            "index": jnp.zeros((), jnp.int32),
        }

    def decode_step(self, decoder_input_tokens: Array, cache: dict[str, Array]):
        """One token per row [B, 1] at position cache["index"] -> (logits [B, 1, V] f32, cache).

        Equals the matching row of `decode` on the whole (unpacked) prefix."""
        index = cache["index"]
        max_len = cache["self_key"].shape[2]
        key_positions = jnp.arange(max_len, dtype=jnp.int32)[None, :]
        shared = {
            "index": index,
            # [1, 1, 1, T]: keys written so far (0..index) are visible.
            "self_mask": (key_positions <= index)[:, None, None, :],
            # [B, 1, 1, S]: every non-padding encoder position (one example per row).
            "cross_mask": (cache["encoder_segment_ids"] != 0)[:, None, None, :],
            "query_positions": jnp.full((1, 1), index, jnp.int32),
            "key_positions": key_positions,
        }
        per_layer = {k: cache[k] for k in ("self_key", "self_value", "cross_key", "cross_value")}
        x = self.token_embedder(decoder_input_tokens)
        x, new_kv = self.decoder("step", x, shared, per_layer)
        new_cache = dict(cache, **new_kv, index=index + 1)
        return self._logits(x), new_cache

    def output_head(self) -> OutputHead:
        """The output projection; tied: the embedding table after scaling x by D**-0.5."""
        c = self.config
        if c.tie_embeddings:
            return OutputHead(self.token_embedder.embedding, transposed=True,
                              input_scale=c.emb_dim ** -0.5, dtype=c.compute_dtype)
        return OutputHead(self.logits_dense(c.emb_dim), dtype=c.compute_dtype)

    def _logits(self, x: Array) -> Array:
        # x [B, L, D] -> [B, L, V] float32
        return with_logical_constraint(self.output_head()(x), ("batch", "length", "vocab"))


def dummy_batch(batch_size: int = 1, encoder_length: int = 8, decoder_length: int = 8) -> dict[str, Array]:
    """Right field names and shapes for `T5.init` / `jax.eval_shape` (values are dummies)."""
    def ones(length: int) -> Array:
        return jnp.ones((batch_size, length), jnp.int32)

    def positions(length: int) -> Array:
        return jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch_size, length))

    return {
        "encoder_input_tokens": ones(encoder_length),
        "encoder_segment_ids": ones(encoder_length),
        "encoder_positions": positions(encoder_length),
        "decoder_input_tokens": ones(decoder_length),
        "decoder_target_tokens": ones(decoder_length),
        "decoder_loss_weights": ones(decoder_length),
        "decoder_segment_ids": ones(decoder_length),
        "decoder_positions": positions(decoder_length),
    }
