"""Llama-style decoder-only transformer (causal LM or prefix LM) with a decode cache.

Pre-norm blocks: x += Attn(RMSNorm(x)); x += SwiGLU(RMSNorm(x)) (layers.GatedMLP); RMSNorm; head. Attention is
grouped-query with rotary embeddings driven by `decoder_positions`, so positions restart in
every packed segment and a packed row computes exactly what its segments compute alone.

Parameter tree (non-scanned; with `scan_layers` the `layers_i` subtrees are stacked into one
`layers` subtree with a leading [num_layers] axis named 'layers'):
    embed/embedding                  [V, D]      ('vocab', 'embed')
    layers_i/attention_norm/scale    [D]
    layers_i/attention/query/kernel  [D, H, Dh]  ('embed', 'heads', 'head_dim')
    layers_i/attention/key/kernel    [D, K, Dh]  ('embed', 'kv_heads', 'head_dim')
    layers_i/attention/value/kernel  [D, K, Dh]
    layers_i/attention/out/kernel    [H, Dh, D]  ('heads', 'head_dim', 'embed')
    layers_i/mlp_norm/scale          [D]
    layers_i/mlp/{gate,up}/kernel    [D, F]      ('embed', 'mlp')
    layers_i/mlp/down/kernel         [F, D]      ('mlp', 'embed')
    final_norm/scale                 [D]
    lm_head/kernel                   [D, V]      ('embed', 'vocab')   (absent when tied)

Decoding: `init_cache` builds a zero cache; `Decoder.decode` (apply with mutable=["cache"])
appends a chunk of T tokens (a prompt prefill or one generated token) and returns its logits.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp

from flan_jax.models import attention, layers

Array = jax.Array

REMAT_POLICIES = layers.REMAT_POLICIES


@gin.configurable
@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """All hyper-parameters of the decoder; passed whole to every module."""

    vocab_size: int = 32000
    emb_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 8
    head_dim: int = 64
    mlp_dim: int = 1536
    num_layers: int = 8
    rope_theta: float = 10000.0
    # Llama-3.1 style frequency rescaling (factor, low_freq_factor, high_freq_factor,
    # original_max_positions), or None for plain RoPE; see layers.rope_frequencies.
    rope_llama3_scaling: tuple[float, float, float, int] | None = None
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    prefix_lm: bool = False
    remat: str = "none"  # one of REMAT_POLICIES
    scan_layers: bool = False
    dtype: str = "float32"  # compute dtype; parameters are always float32
    # Training passes of a causal (not prefix) LM compute attention in this many query blocks,
    # each against the keys up to its end, skipping the masked upper triangle
    # (attention.dot_product_attention's causal_blocks; docs/benchmarks.md).
    causal_attention_blocks: int = 4
    # Instead, when the length is a multiple (> 1) of attention_block_size: blocks of that many
    # positions, skipping every (query block, key block) pair the mask leaves empty, e.g. between
    # the segments of packed rows (attention.dot_product_attention's skip_masked_blocks; measured
    # in docs/benchmarks.md, "Segment-aware attention").
    skip_masked_attention_blocks: bool = True
    attention_block_size: int = 128

    def __post_init__(self) -> None:
        if self.rope_llama3_scaling is not None:  # JSON / gin may hand a list
            object.__setattr__(self, "rope_llama3_scaling", tuple(self.rope_llama3_scaling))
            if len(self.rope_llama3_scaling) != 4:
                raise ValueError(f"rope_llama3_scaling needs 4 values, got {self.rope_llama3_scaling}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"remat {self.remat!r} not in {sorted(REMAT_POLICIES)}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even for rotary embeddings")
        if self.attention_block_size < 1:
            raise ValueError(f"attention_block_size must be >= 1, got {self.attention_block_size}")
        if self.causal_attention_blocks < 1:
            raise ValueError(f"causal_attention_blocks must be >= 1, got {self.causal_attention_blocks}")

    @property
    def compute_dtype(self) -> Any:
        return jnp.dtype(self.dtype)


def _kernel_init() -> layers.Initializer:
    return nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


class Attention(nn.Module):
    """Grouped-query self-attention with RoPE; in decode mode reads and extends a K/V cache."""

    config: DecoderConfig
    decode: bool = False

    @nn.compact
    def __call__(self, x: Array, positions: Array, mask: Array, cache_index: Array) -> Array:
        cfg = self.config
        dense = lambda feats, axes, name, num_in=1: layers.DenseGeneral(  # noqa: E731
            feats, axes, num_in=num_in, kernel_init=_kernel_init(), dtype=cfg.compute_dtype, name=name
        )
        # [B, T, D] -> q [B, T, H, Dh], k/v [B, T, K, Dh]
        q = dense((cfg.num_heads, cfg.head_dim), ("embed", "heads", "head_dim"), "query")(x)
        k = dense((cfg.num_kv_heads, cfg.head_dim), ("embed", "kv_heads", "head_dim"), "key")(x)
        v = dense((cfg.num_kv_heads, cfg.head_dim), ("embed", "kv_heads", "head_dim"), "value")(x)
        rope = dict(theta=cfg.rope_theta, llama3_scaling=cfg.rope_llama3_scaling)
        q = layers.rotary_embedding(q, positions, **rope)
        k = layers.rotary_embedding(k, positions, **rope)
        q = layers.with_logical_constraint(q, ("batch", "length", "heads", "head_dim"))
        k = layers.with_logical_constraint(k, ("batch", "length", "kv_heads", "head_dim"))
        v = layers.with_logical_constraint(v, ("batch", "length", "kv_heads", "head_dim"))
        if self.decode:
            k, v = attention.extend_kv_cache(self, k, v, cache_index)
        # [B, T, H, Dh] attending over [B, S, K, Dh]; the mask is causal in array index unless
        # prefix LM (bidirectional prompt) or decoding (S is the cache).
        blocks = 1 if self.decode or cfg.prefix_lm else cfg.causal_attention_blocks
        length, size = q.shape[1], cfg.attention_block_size
        skip = cfg.skip_masked_attention_blocks and blocks > 1 and length % size == 0 and length > size
        if skip:
            blocks = length // size
        out = attention.dot_product_attention(q, k, v, mask=mask, causal_blocks=blocks, skip_masked_blocks=skip)
        out = layers.with_logical_constraint(out, ("batch", "length", "heads", "head_dim"))
        # [B, T, H, Dh] -> [B, T, D]
        return dense(cfg.emb_dim, ("heads", "head_dim", "embed"), "out", num_in=2)(out)


class DecoderLayer(nn.Module):
    """One pre-norm block. Returns (x, None) so it can be the body of `nn.scan`."""

    config: DecoderConfig
    decode: bool = False

    @nn.compact
    def __call__(self, x: Array, positions: Array, mask: Array, cache_index: Array) -> tuple[Array, None]:
        cfg = self.config
        norm = lambda name: layers.RMSNorm(eps=cfg.norm_eps, dtype=cfg.compute_dtype, name=name)  # noqa: E731
        # x: [B, T, D]
        attention = Attention(cfg, decode=self.decode, name="attention")
        x = x + attention(norm("attention_norm")(x), positions, mask, cache_index)
        mlp = layers.GatedMLP(cfg.emb_dim, cfg.mlp_dim, "silu", _kernel_init(), cfg.compute_dtype, name="mlp")
        x = x + mlp(norm("mlp_norm")(x))
        return layers.with_logical_constraint(x, ("batch", "length", "embed")), None


def _layer_class(cfg: DecoderConfig) -> type[nn.Module]:
    return layers.remat(DecoderLayer, cfg.remat, scan_layers=cfg.scan_layers)


class Decoder(nn.Module):
    """Decoder-only LM consuming the `decoder` / `prefix_lm` batch fields.

    `apply({"params": p}, batch)` -> float32 logits [B, L, V]; with `return_hidden=True` ->
    (final hidden states [B, L, D], the `layers.OutputHead`) for `loss.head_cross_entropy_loss`,
    which applies the head at the loss positions only. Batch fields (int32 [B, L]):
    decoder_input_tokens (required), decoder_segment_ids and decoder_positions (packed
    batches; when absent the padding mask comes from decoder_target_tokens != 0 if given, as
    the inputs start with the BOS id 0, and positions are 0..L-1), decoder_causal_attention
    (prefix_lm only: 1 on the bidirectional prefix), decoder_branch_ids (optional, tree rows of
    `eval.packed_scoring`: 0 on a shared prompt, b > 0 on its option b, which sees the prompt and
    itself but no other option; `attention.branch_mask`; not with decode=True).
    """

    config: DecoderConfig

    @property
    def FEATURE_FORMAT(self) -> str:  # noqa: N802  (a per-instance class-like constant)
        return "prefix_lm" if self.config.prefix_lm else "decoder"

    @nn.compact
    def __call__(self, batch: Mapping[str, Array], decode: bool = False, *,
                 return_hidden: bool = False) -> Array | tuple[Array, layers.OutputHead]:
        cfg = self.config
        tokens = jnp.asarray(batch["decoder_input_tokens"])  # [B, T]
        segment_ids, positions = _segments_and_positions(batch)
        prefix = batch.get("decoder_causal_attention") if cfg.prefix_lm else None
        embed = layers.Embed(
            cfg.vocab_size, cfg.emb_dim, embedding_init=nn.initializers.normal(cfg.emb_dim**-0.5),
            dtype=cfg.compute_dtype, name="embed",
        )
        x = layers.with_logical_constraint(embed(tokens), ("batch", "length", "embed"))  # [B, T, D]
        # Zero unless a "perturbations" collection is passed: lets tests take d(loss)/d(embeddings).
        x = self.perturb("embedded", x)
        branch_ids = attention.batch_branch_ids(batch, decode)
        if decode and self.has_variable("cache", "index"):
            mask, cache_index = self._extend_mask_cache(segment_ids, prefix)
        else:
            if decode:  # creation pass: allocate the mask cache with this input's length
                self._extend_mask_cache(segment_ids, prefix)
            mask = attention.make_attention_mask(
                segment_ids, segment_ids, causal=True, bidirectional_query=prefix, bidirectional_key=prefix
            )
            if branch_ids is not None:
                mask = mask & attention.branch_mask(branch_ids)
            cache_index = jnp.zeros((), jnp.int32)
        x = self._run_layers(x, positions, mask, cache_index, decode)
        x = layers.RMSNorm(eps=cfg.norm_eps, dtype=cfg.compute_dtype, name="final_norm")(x)
        if cfg.tie_embeddings:
            head = layers.OutputHead(embed.embedding, transposed=True, dtype=cfg.compute_dtype)
        else:
            kernel = layers.HeadKernel(cfg.vocab_size, kernel_init=_kernel_init(), name="lm_head")(cfg.emb_dim)
            head = layers.OutputHead(kernel, dtype=cfg.compute_dtype)
        if return_hidden:  # training: the loss applies the head at the loss positions only
            return x, head
        return layers.with_logical_constraint(head(x), ("batch", "length", "vocab"))

    def _run_layers(self, x: Array, positions: Array, mask: Array, cache_index: Array, decode: bool) -> Array:
        cfg = self.config
        layer_cls = _layer_class(cfg)
        if cfg.scan_layers:
            stack = nn.scan(
                layer_cls,
                variable_axes={"params": 0, "cache": 0},
                split_rngs={"params": True},
                in_axes=(nn.broadcast, nn.broadcast, nn.broadcast),
                length=cfg.num_layers,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )(cfg, decode=decode, name="layers")
            x, _ = stack(x, positions, mask, cache_index)
            return x
        for i in range(cfg.num_layers):
            x, _ = layer_cls(cfg, decode=decode, name=f"layers_{i}")(x, positions, mask, cache_index)
        return x

    def _extend_mask_cache(self, segment_ids: Array, prefix: Array | None) -> tuple[Array, Array]:
        """Records the new keys' segment ids / prefix flags; mask of the new queries over the cache."""
        cached = attention.extend_segment_cache(self, segment_ids, prefix)
        if cached is None:  # creation pass
            return jnp.zeros(()), jnp.zeros((), jnp.int32)
        start, key_segments, key_prefix = cached
        num_new = segment_ids.shape[1]
        prefix = jnp.zeros(segment_ids.shape, jnp.bool_) if prefix is None else jnp.asarray(prefix).astype(bool)
        # [B, 1, T, S]
        mask = attention.make_attention_mask(
            segment_ids, key_segments, causal=True,
            query_index=start + jnp.arange(num_new), key_index=jnp.arange(key_segments.shape[1]),
            bidirectional_query=prefix, bidirectional_key=key_prefix,
        )
        return mask, start

    def decode(
        self,
        tokens: Array,
        positions: Array,
        segment_ids: Array | None = None,
        causal_attention: Array | None = None,
    ) -> Array:
        """Appends T tokens [B, T] to the cache and returns their logits [B, T, V].

        Call with `mutable=["cache"]` and variables {"params", "cache"}. A prompt is one call
        (its padding gets segment id 0; prefix-LM prompts pass causal_attention=1 on the
        prefix); each generated token is a further call with T = 1 and its own position.
        """
        batch = {"decoder_input_tokens": tokens, "decoder_positions": positions}
        batch["decoder_segment_ids"] = jnp.ones_like(tokens) if segment_ids is None else segment_ids
        if causal_attention is not None:
            batch["decoder_causal_attention"] = causal_attention
        return self(batch, decode=True)


def _segments_and_positions(batch: Mapping[str, Array]) -> tuple[Array, Array]:
    tokens = jnp.asarray(batch["decoder_input_tokens"])
    segment_ids = batch.get("decoder_segment_ids")
    if segment_ids is None:
        targets = batch.get("decoder_target_tokens")
        segment_ids = jnp.ones_like(tokens) if targets is None else (jnp.asarray(targets) != 0).astype(jnp.int32)
    positions = batch.get("decoder_positions")
    if positions is None:
        positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
    return jnp.asarray(segment_ids), jnp.asarray(positions)


def init_cache(model: nn.Module, batch_size: int, max_length: int) -> Any:
    """A zero decode cache for `max_length` positions (shapes via eval_shape: nothing is run).

    Works for any module with a `decode(tokens, positions)` method (Decoder, gemma.Gemma3)."""
    tokens = jnp.zeros((batch_size, max_length), jnp.int32)

    def make() -> Any:
        return model.init(jax.random.PRNGKey(0), tokens, tokens, method="decode")["cache"]

    shapes = jax.eval_shape(make)
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def dummy_batch(batch_size: int = 1, length: int = 8) -> dict[str, Array]:
    """A batch of the right field names and shapes, for `model.init` / `jax.eval_shape`."""
    zeros = jnp.zeros((batch_size, length), jnp.int32)
    ones = jnp.ones((batch_size, length), jnp.int32)
    return {
        "decoder_input_tokens": zeros,
        "decoder_target_tokens": ones,
        "decoder_loss_weights": ones,
        "decoder_segment_ids": ones,
        "decoder_positions": jnp.broadcast_to(jnp.arange(length), (batch_size, length)),
        "decoder_causal_attention": zeros,
    }
