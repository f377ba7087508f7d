"""Gemma 3 text decoder (causal LM) with a decode cache; a sibling of `decoder.py` built from the
same shared layers.

Differences from the Llama-style decoder (facts from transformers' models/gemma3/modeling_gemma3.py
and google-deepmind/gemma's gm/nn/_modules.py; Gemma 3 technical report, 2025):
  * embeddings are multiplied by sqrt(emb_dim), the factor rounded to the compute dtype first
    (HF casts it to the weights' dtype: sqrt(640) = 25.298 becomes 25.25 in bfloat16);
  * every block normalises before AND after both attention and MLP:
        x += post_attention_norm(Attn(pre_attention_norm(x)))
        x += post_mlp_norm(GeGLU(pre_mlp_norm(x)))
    and every RMSNorm multiplies by (1 + scale) (scales start at zero);
  * queries and keys are RMS-normalised per head (over Dh) before RoPE;
  * attention logits are scaled by query_pre_attn_scalar^-1/2 instead of head_dim^-1/2;
  * GeGLU MLP with the tanh approximation of GELU;
  * local layers attend over a sliding window of `sliding_window` keys with RoPE base
    `rope_local_base_freq`; global layers attend to everything before them with RoPE base
    `rope_theta` (frequencies divided by `rope_scaling_factor`, HF's "linear" rope type, on the
    4B+ models). Layer i is global when (i + 1) % sliding_window_pattern == 0 (5 local : 1
    global), unless `layer_types` lists them explicitly;
  * tied input/output embeddings.
Packing works as in the decoder: masks from decoder_segment_ids, RoPE from decoder_positions.

Parameter tree (non-scanned; with `scan_layers` the `layers_i` subtrees are stacked into one
`layers` subtree with a leading [num_layers] axis named 'layers'):
    embed/embedding                          [V, D]      ('vocab', 'embed')
    layers_i/pre_attention_norm/scale        [D]         ('embed',)
    layers_i/attention/query/kernel          [D, H, Dh]  ('embed', 'heads', 'head_dim')
    layers_i/attention/key/kernel            [D, K, Dh]  ('embed', 'kv_heads', 'head_dim')
    layers_i/attention/value/kernel          [D, K, Dh]  ('embed', 'kv_heads', 'head_dim')
    layers_i/attention/query_norm/scale      [Dh]        ('head_dim',)
    layers_i/attention/key_norm/scale        [Dh]        ('head_dim',)
    layers_i/attention/out/kernel            [H, Dh, D]  ('heads', 'head_dim', 'embed')
    layers_i/post_attention_norm/scale       [D]
    layers_i/pre_mlp_norm/scale              [D]
    layers_i/mlp/{gate,up}/kernel            [D, F]      ('embed', 'mlp')
    layers_i/mlp/down/kernel                 [F, D]      ('mlp', 'embed')
    layers_i/post_mlp_norm/scale             [D]
    final_norm/scale                         [D]
    lm_head/kernel                           [D, V]      ('embed', 'vocab')   (absent when tied)

Decoding: `decoder.init_cache(model, B, S)` builds a zero cache; `Gemma3.decode` (apply with
mutable=["cache"]) appends T tokens and returns their logits. Every layer keeps all S slots;
local layers mask keys that fell out of their window (the results equal HF's sliding cache; a
ring buffer of `sliding_window` slots would use less memory and is not implemented).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.models import attention, layers
from flan_jax.models.decoder import REMAT_POLICIES, dummy_batch, init_cache  # noqa: F401  (same contract)
from flan_jax.models.decoder import _segments_and_positions

Array = jax.Array

SLIDING, FULL = "sliding_attention", "full_attention"  # HF Gemma3TextConfig.layer_types values


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Gemma3Config:
    """All hyper-parameters of a Gemma 3 text decoder; passed whole to every module.

    Defaults are Gemma 3 270M (HF google/gemma-3-270m config.json). Names follow DecoderConfig
    where the concept is the same and HF Gemma3TextConfig keys for Gemma-specific ones; token
    ids and max_position_embeddings are not used by the model, only written back on HF export.
    """

    vocab_size: int = 262144
    emb_dim: int = 640
    num_heads: int = 4
    num_kv_heads: int = 1
    head_dim: int = 256
    mlp_dim: int = 2048
    num_layers: int = 18
    query_pre_attn_scalar: float = 256.0
    sliding_window: int = 512
    sliding_window_pattern: int = 6
    # Explicit per-layer kinds (HF `layer_types`: "sliding_attention" / "full_attention"); None
    # derives them from sliding_window_pattern.
    layer_types: tuple[str, ...] | None = None
    rope_theta: float = 1_000_000.0  # global layers
    rope_local_base_freq: float = 10_000.0  # local (sliding) layers
    rope_scaling_factor: float = 1.0  # HF rope_scaling {"rope_type": "linear", "factor": f}, global layers
    norm_eps: float = 1e-6  # HF rms_norm_eps
    tie_embeddings: bool = True
    max_position_embeddings: int = 32768
    pad_token_id: int = 0
    eos_token_id: int | tuple[int, ...] = 1
    bos_token_id: int = 2
    remat: str = "none"  # one of REMAT_POLICIES
    scan_layers: bool = False
    dtype: str = "float32"  # compute dtype; parameters are always float32
    causal_attention_blocks: int = 4  # as DecoderConfig.causal_attention_blocks
    # As DecoderConfig's, but off by default here: not yet measured at Gemma's shapes (head_dim
    # 256, one kv head); the block pairs skipped follow the mask, sliding windows included.
    skip_masked_attention_blocks: bool = False
    attention_block_size: int = 128

    def __post_init__(self) -> None:
        for name in ("layer_types", "eos_token_id"):  # JSON / gin may hand a list
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if self.layer_types is not None:
            if len(self.layer_types) != self.num_layers:
                raise ValueError(f"layer_types has {len(self.layer_types)} entries for {self.num_layers} layers")
            unknown = sorted(set(self.layer_types) - {SLIDING, FULL})
            if unknown:
                raise ValueError(f"layer_types {unknown} not in ({SLIDING!r}, {FULL!r})")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"remat {self.remat!r} not in {sorted(REMAT_POLICIES)}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even for rotary embeddings")
        if (self.sliding_window < 1 or self.sliding_window_pattern < 1 or self.causal_attention_blocks < 1
                or self.attention_block_size < 1):
            raise ValueError("sliding_window, sliding_window_pattern, causal_attention_blocks and "
                             "attention_block_size must be >= 1")

    @property
    def compute_dtype(self) -> Any:
        return jnp.dtype(self.dtype)

    @property
    def global_layers(self) -> tuple[bool, ...]:
        """Per layer, True for a global (full attention) layer.

        Example: 8 layers, pattern 6 -> (F, F, F, F, F, T, F, F) (HF Gemma3TextConfig.__post_init__)."""
        if self.layer_types is not None:
            return tuple(t == FULL for t in self.layer_types)
        return tuple((i + 1) % self.sliding_window_pattern == 0 for i in range(self.num_layers))

    def inv_freq(self, is_global: bool) -> np.ndarray:
        """RoPE frequencies [Dh/2] of a global or a local layer."""
        if is_global:
            return layers.rope_frequencies(self.head_dim, self.rope_theta) / np.float32(self.rope_scaling_factor)
        return layers.rope_frequencies(self.head_dim, self.rope_local_base_freq)


def _kernel_init() -> layers.Initializer:
    return nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def _norm(cfg: Gemma3Config, name: str, axes: layers.LogicalAxes = ("embed",)) -> layers.RMSNorm:
    return layers.RMSNorm(eps=cfg.norm_eps, dtype=cfg.compute_dtype, scale_plus_one=True, scale_axes=axes,
                          name=name)


class Attention(nn.Module):
    """GQA/MQA self-attention with per-head q/k RMS norms and RoPE; decode mode extends a cache."""

    config: Gemma3Config
    decode: bool = False

    @nn.compact
    def __call__(self, x: Array, positions: Array, mask: Array, inv_freq: Array, cache_index: Array) -> Array:
        cfg = self.config
        dense = lambda feats, axes, name, num_in=1: layers.DenseGeneral(  # noqa: E731
            feats, axes, num_in=num_in, kernel_init=_kernel_init(), dtype=cfg.compute_dtype, name=name
        )
        # [B, T, D] -> q [B, T, H, Dh], k/v [B, T, K, Dh]
        q = dense((cfg.num_heads, cfg.head_dim), ("embed", "heads", "head_dim"), "query")(x)
        k = dense((cfg.num_kv_heads, cfg.head_dim), ("embed", "kv_heads", "head_dim"), "key")(x)
        v = dense((cfg.num_kv_heads, cfg.head_dim), ("embed", "kv_heads", "head_dim"), "value")(x)
        q = _norm(cfg, "query_norm", ("head_dim",))(q)
        k = _norm(cfg, "key_norm", ("head_dim",))(k)
        q = layers.rotary_embedding(q, positions, inv_freq=inv_freq)
        k = layers.rotary_embedding(k, positions, inv_freq=inv_freq)
        q = layers.with_logical_constraint(q, ("batch", "length", "heads", "head_dim"))
        k = layers.with_logical_constraint(k, ("batch", "length", "kv_heads", "head_dim"))
        v = layers.with_logical_constraint(v, ("batch", "length", "kv_heads", "head_dim"))
        if self.decode:
            k, v = attention.extend_kv_cache(self, k, v, cache_index)
        blocks = 1 if self.decode else cfg.causal_attention_blocks
        length, size = q.shape[1], cfg.attention_block_size
        skip = cfg.skip_masked_attention_blocks and blocks > 1 and length % size == 0 and length > size
        if skip:
            blocks = length // size
        out = attention.dot_product_attention(q, k, v, mask=mask, scale=cfg.query_pre_attn_scalar**-0.5,
                                              causal_blocks=blocks, skip_masked_blocks=skip)
        out = layers.with_logical_constraint(out, ("batch", "length", "heads", "head_dim"))
        # [B, T, H, Dh] -> [B, T, D]
        return dense(cfg.emb_dim, ("heads", "head_dim", "embed"), "out", num_in=2)(out)


class Gemma3Layer(nn.Module):
    """One block with norms around both sublayers. Returns (x, None) for `nn.scan`.

    `is_global` (bool scalar array) picks the mask and RoPE frequencies of a global or a local
    layer, so one scanned body serves both kinds; masks = (global [B, 1, T, S], local [B, 1, T, S]).
    """

    config: Gemma3Config
    decode: bool = False

    @nn.compact
    def __call__(self, x: Array, positions: Array, masks: tuple[Array, Array], is_global: Array,
                 cache_index: Array) -> tuple[Array, None]:
        cfg = self.config
        global_mask, local_mask = masks
        mask = jnp.where(is_global, global_mask, local_mask)
        inv_freq = jnp.where(is_global, cfg.inv_freq(True), cfg.inv_freq(False))  # [Dh/2]
        # x: [B, T, D]
        h = Attention(cfg, decode=self.decode, name="attention")(
            _norm(cfg, "pre_attention_norm")(x), positions, mask, inv_freq, cache_index)
        x = x + _norm(cfg, "post_attention_norm")(h)
        mlp = layers.GatedMLP(cfg.emb_dim, cfg.mlp_dim, "gelu_pytorch_tanh", _kernel_init(), cfg.compute_dtype,
                              name="mlp")
        x = x + _norm(cfg, "post_mlp_norm")(mlp(_norm(cfg, "pre_mlp_norm")(x)))
        return layers.with_logical_constraint(x, ("batch", "length", "embed")), None


class Gemma3(nn.Module):
    """Gemma 3 causal LM consuming the `decoder` batch fields (same contract as decoder.Decoder).

    `apply({"params": p}, batch)` -> float32 logits [B, L, V]. Batch fields (int32 [B, L]):
    decoder_input_tokens (required), decoder_segment_ids and decoder_positions (packed batches;
    when absent the padding mask comes from decoder_target_tokens != 0 if given, and positions
    are 0..L-1), decoder_branch_ids (optional tree rows, as decoder.Decoder).
    """

    config: Gemma3Config
    FEATURE_FORMAT = "decoder"

    @nn.compact
    def __call__(self, batch: Mapping[str, Array], decode: bool = False, *,
                 return_hidden: bool = False) -> Array | tuple[Array, layers.OutputHead]:
        cfg = self.config
        tokens = jnp.asarray(batch["decoder_input_tokens"])  # [B, T]
        segment_ids, positions = _segments_and_positions(batch)
        embed = layers.Embed(
            cfg.vocab_size, cfg.emb_dim, embedding_init=nn.initializers.normal(cfg.emb_dim**-0.5),
            dtype=cfg.compute_dtype, name="embed",
        )
        # [B, T, D]; the normalizer is rounded to the compute dtype, as HF and deepmind/gemma do.
        x = embed(tokens) * jnp.asarray(math.sqrt(cfg.emb_dim), cfg.compute_dtype)
        x = layers.with_logical_constraint(x, ("batch", "length", "embed"))
        # Zero unless a "perturbations" collection is passed: lets tests take d(loss)/d(embeddings).
        x = self.perturb("embedded", x)
        masks, cache_index = self._masks(segment_ids, positions, decode, attention.batch_branch_ids(batch, decode))
        x = self._run_layers(x, positions, masks, cache_index, decode)
        x = _norm(cfg, "final_norm")(x)
        # the tied table, or lm_head when untied (the decoder's head, shared)
        if cfg.tie_embeddings:
            head = layers.OutputHead(embed.embedding, transposed=True, dtype=cfg.compute_dtype)
        else:
            kernel = layers.HeadKernel(cfg.vocab_size, kernel_init=_kernel_init(), name="lm_head")(cfg.emb_dim)
            head = layers.OutputHead(kernel, dtype=cfg.compute_dtype)
        if return_hidden:  # training: the loss applies the head at the loss positions only
            return x, head
        return layers.with_logical_constraint(head(x), ("batch", "length", "vocab"))

    def _masks(self, segment_ids: Array, positions: Array, decode: bool, branch_ids: Array | None = None
               ) -> tuple[tuple[Array, Array], Array]:
        """(global mask, local mask) [B, 1, T, S] and the cache slot of the first new token.

        Causality and segments come from array indices / cache slots; the window from positions;
        branches (tree rows, full pass only) from `attention.branch_mask`."""
        window = self.config.sliding_window
        cached = attention.extend_segment_cache(self, segment_ids, positions=positions) if decode else None
        if cached is None:  # training / scoring pass, or the cache creation pass
            full = attention.make_attention_mask(segment_ids, segment_ids, causal=True)
            if branch_ids is not None:
                full = full & attention.branch_mask(branch_ids)
            local = full & attention.sliding_window_mask(positions, positions, window)
            return (full, local), jnp.zeros((), jnp.int32)
        start, key_segments, _, key_positions = cached
        full = attention.make_attention_mask(
            segment_ids, key_segments, causal=True, query_index=start + jnp.arange(segment_ids.shape[1]),
            key_index=jnp.arange(key_segments.shape[1]))
        local = full & attention.sliding_window_mask(positions, key_positions, window)
        return (full, local), start

    def _run_layers(self, x: Array, positions: Array, masks: tuple[Array, Array], cache_index: Array,
                    decode: bool) -> Array:
        cfg = self.config
        layer_cls = layers.remat(Gemma3Layer, cfg.remat, scan_layers=cfg.scan_layers)
        is_global = jnp.asarray(cfg.global_layers)  # [num_layers] bool
        if cfg.scan_layers:
            stack = nn.scan(
                layer_cls,
                variable_axes={"params": 0, "cache": 0},
                split_rngs={"params": True},
                in_axes=(nn.broadcast, nn.broadcast, 0, nn.broadcast),
                length=cfg.num_layers,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )(cfg, decode=decode, name="layers")
            x, _ = stack(x, positions, masks, is_global, cache_index)
            return x
        for i in range(cfg.num_layers):
            x, _ = layer_cls(cfg, decode=decode, name=f"layers_{i}")(x, positions, masks, is_global[i], cache_index)
        return x

    def decode(
        self,
        tokens: Array,
        positions: Array,
        segment_ids: Array | None = None,
        causal_attention: Array | None = None,
    ) -> Array:
        """Appends T tokens [B, T] to the cache and returns their logits [B, T, V].

        Same contract as `decoder.Decoder.decode` (call with `mutable=["cache"]`; prompt
        padding gets segment id 0). Gemma is a causal LM: `causal_attention` must be None.
        """
        if causal_attention is not None:
            raise ValueError("Gemma3 is a causal LM: decode takes no causal_attention (prefix LM) flags")
        batch = {"decoder_input_tokens": tokens, "decoder_positions": positions}
        batch["decoder_segment_ids"] = jnp.ones_like(tokens) if segment_ids is None else segment_ids
        return self(batch, decode=True)

