"""Building blocks shared by the T5, the Llama-style decoder and Gemma 3.

Every parameter is created through `nn.with_logical_partitioning`, so `jax.eval_shape(model.init)`
returns boxes carrying logical axis names ('embed', 'mlp', 'heads', ...); `models/sharding.py` maps
them to mesh axes. Activations are annotated with `with_logical_constraint`, a no-op unless a mesh
and a rules table are active (`nn.logical_axis_rules(rules_for_mesh(mesh))` plus `jax.set_mesh(mesh)`).

Shapes are written in the names and comments with these letters:
B batch, L query length, S key length, D embed (model) dim, H query heads, K kv heads,
Dh head dim, F mlp dim, V vocab.

Dtypes: parameters are stored in `param_dtype` (float32); computation runs in `dtype`
(float32 or bfloat16); norms and softmax always compute in float32.
"""
from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Dtype = Any
Initializer = Callable[[jax.Array, tuple[int, ...], Dtype], jax.Array]
LogicalAxes = tuple[str | None, ...]


def with_logical_constraint(x: Array, axes: LogicalAxes) -> Array:
    """Pins an activation's sharding by logical names; no-op outside a mesh + rules context."""
    return nn.with_logical_constraint(x, axes)


class RMSNorm(nn.Module):
    """Root-mean-square norm (no mean subtraction, no bias), as in T5, Llama and Gemma.

    Computes in float32 whatever the input dtype: y = x / sqrt(mean(x^2) + eps) * scale, or
    with `scale_plus_one` (Gemma; HF `Gemma3RMSNorm`) y = ... * (1 + scale) with the scale
    initialised to zeros, so both start as the identity. The scale [x.shape[-1]] carries
    `scale_axes` (('embed',) for the model width; ('head_dim',) for Gemma's per-head q/k norms).

    Worked example (eps 0): x = [3, 4] -> rms = sqrt(12.5) = 3.5355 -> [0.8485, 1.1314];
    scale [0.5, -1] gives [0.4243, -1.1314], or with scale_plus_one [1.2728, 0.0].
    """

    eps: float = 1e-6
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    scale_plus_one: bool = False
    scale_axes: LogicalAxes = ("embed",)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        # x: [..., D]
        init = nn.initializers.zeros if self.scale_plus_one else nn.initializers.ones
        scale = self.param(
            "scale",
            nn.with_logical_partitioning(init, self.scale_axes),
            (x.shape[-1],),
            self.param_dtype,
        )
        x32 = x.astype(jnp.float32)
        inv_rms = jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
        factor = 1.0 + scale.astype(jnp.float32) if self.scale_plus_one else scale.astype(jnp.float32)
        return (x32 * inv_rms * factor).astype(self.dtype)


def _as_tuple(x: int | Sequence[int]) -> tuple[int, ...]:
    return (x,) if isinstance(x, int) else tuple(x)


class DenseGeneral(nn.Module):
    """A bias-free linear map contracting the last `num_in` input dims into `features`.

    The kernel has shape `in_dims + features` (e.g. [D, H, Dh] for a query projection,
    [H, Dh, D] for the attention output) and logical names `kernel_axes` of the same rank.
    The product is computed as one plain 2-D GEMM on reshaped views (free reshapes of
    contiguous dims), which is the fastest layout on CPU and maps to the MXU on TPU.

    `kernel_init` is called with the 2-D shape [prod(in_dims), prod(features)] so that
    fan-in based initializers see the true fan-in; the result is reshaped to the kernel shape.
    """

    features: int | Sequence[int]
    kernel_axes: LogicalAxes
    num_in: int = 1
    kernel_init: Initializer = nn.initializers.lecun_normal()
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        features = _as_tuple(self.features)
        in_dims = tuple(x.shape[x.ndim - self.num_in:])
        kernel_shape = in_dims + features
        if len(self.kernel_axes) != len(kernel_shape):
            raise ValueError(f"{self.name}: kernel_axes {self.kernel_axes} do not match {kernel_shape}")
        n_in, n_out = math.prod(in_dims), math.prod(features)
        base_init = self.kernel_init

        def init_fn(key: jax.Array, shape: tuple[int, ...], dtype: Dtype) -> jax.Array:
            return base_init(key, (n_in, n_out), dtype).reshape(shape)

        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(init_fn, self.kernel_axes),
            kernel_shape,
            self.param_dtype,
        )
        batch_shape = x.shape[: x.ndim - self.num_in]
        # [..., prod(in)] @ [prod(in), prod(out)] -> [..., prod(out)]
        y = linear(
            x.astype(self.dtype).reshape(batch_shape + (n_in,)),
            kernel.astype(self.dtype).reshape(n_in, n_out),
        )
        return y.reshape(batch_shape + features)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def linear(x: Array, kernel: Array, kernel_transposed: bool = False) -> Array:
    """x [..., I] times kernel [I, O] (or [O, I] when `kernel_transposed`) -> [..., O].

    Same values and gradients as `jnp.dot`, with a hand-written backward: autodiff computes the
    kernel gradient as (g^T x)^T, and XLA on CPU then writes the [tokens, O] cotangent a second
    time, transposed, before the GEMM. Measured on the 2-core CPU (1024 tokens, 512 -> 32000
    head + cross-entropy, forward+backward, interleaved): 0.76x the time of autodiff.
    """
    return _linear_forward(x, kernel, kernel_transposed)


def _linear_forward(x: Array, kernel: Array, kernel_transposed: bool) -> Array:
    contract = 1 if kernel_transposed else 0
    return jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (contract,)), ((), ())))


def _linear_fwd(x, kernel, kernel_transposed):
    return _linear_forward(x, kernel, kernel_transposed), (x, kernel)


def _linear_bwd(kernel_transposed, residuals, g):
    x, kernel = residuals
    # dx [..., I] = g [..., O] . kernel over O
    out_axis = 0 if kernel_transposed else 1
    d_x = jax.lax.dot_general(g, kernel, (((g.ndim - 1,), (out_axis,)), ((), ())))
    # d_kernel: contract all token dims of x and g directly (no transpose of the product)
    tokens = tuple(range(x.ndim - 1))
    if kernel_transposed:  # [O, I] = g^T x
        d_kernel = jax.lax.dot_general(g, x, ((tokens, tokens), ((), ())))
    else:  # [I, O] = x^T g
        d_kernel = jax.lax.dot_general(x, g, ((tokens, tokens), ((), ())))
    return d_x.astype(x.dtype), d_kernel.astype(kernel.dtype)


linear.defvjp(_linear_fwd, _linear_bwd)


class Embed(nn.Module):
    """Token embedding table [V, D] with logical axes ('vocab', 'embed').

    `__call__` looks ids up; `attend` multiplies by the transposed table to give logits for a
    tied output head.
    """

    num_embeddings: int
    features: int
    embedding_init: Initializer = nn.initializers.normal(stddev=1.0)
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def setup(self) -> None:
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(self.embedding_init, ("vocab", "embed")),
            (self.num_embeddings, self.features),
            self.param_dtype,
        )

    def __call__(self, ids: Array) -> Array:
        # ids: [B, L] int -> [B, L, D]
        return jnp.take(self.embedding, ids, axis=0).astype(self.dtype)

    def attend(self, x: Array) -> Array:
        # x: [B, L, D] -> [B, L, V]; contracts D with the table's second dim (no transpose copy).
        return linear(x.astype(self.dtype), self.embedding.astype(self.dtype), True)


# Activations of `GatedMLP`, by their HF config names (`hidden_act` / `hidden_activation`).
GATED_ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "silu": jax.nn.silu,  # SwiGLU (Llama)
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),  # GeGLU, tanh GELU (Gemma)
}


class GatedMLP(nn.Module):
    """down(act(gate(x)) * up(x)): [B, L, D] -> [B, L, F] -> [B, L, D] (Shazeer 2020, GLU variants).

    Kernels gate/up [D, F] ('embed', 'mlp') and down [F, D] ('mlp', 'embed'). `activation` is a
    key of GATED_ACTIVATIONS: "silu" gives SwiGLU (Llama), "gelu_pytorch_tanh" GeGLU with the
    tanh approximation of GELU (Gemma; 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))).
    """

    emb_dim: int
    mlp_dim: int
    activation: str = "silu"
    kernel_init: Initializer = nn.initializers.lecun_normal()
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        act = GATED_ACTIVATIONS[self.activation]
        dense = lambda feats, axes, name: DenseGeneral(  # noqa: E731
            feats, axes, kernel_init=self.kernel_init, dtype=self.dtype, name=name
        )
        gate = dense(self.mlp_dim, ("embed", "mlp"), "gate")(x)
        up = dense(self.mlp_dim, ("embed", "mlp"), "up")(x)
        hidden = with_logical_constraint(act(gate) * up, ("batch", "length", "mlp"))
        return dense(self.emb_dim, ("mlp", "embed"), "down")(hidden)


@flax.struct.dataclass
class OutputHead:
    """The output projection as plain data, so a loss can apply it to chosen positions only.

    kernel: [D, V] (an untied head, `transposed=False`) or the [V, D] embedding table of a tied
    head (`transposed=True`); x is multiplied by `input_scale` first (T5's tied head: D**-0.5).
    `head(x)`: x [..., D] -> float32 logits [..., V], computed in `dtype` through `linear` (its
    hand-written backward). Every model family returns one from `apply(..., return_hidden=True)`
    together with the final hidden states; `train/loss.py::head_cross_entropy_loss` uses it.
    """

    kernel: Array
    transposed: bool = flax.struct.field(pytree_node=False, default=False)
    input_scale: float = flax.struct.field(pytree_node=False, default=1.0)
    dtype: Dtype = flax.struct.field(pytree_node=False, default=jnp.float32)

    def _scaled(self, x: Array) -> Array:
        return x * self.input_scale if self.input_scale != 1.0 else x

    def __call__(self, x: Array) -> Array:
        x = self._scaled(x)
        return linear(x.astype(self.dtype), self.kernel.astype(self.dtype), self.transposed).astype(jnp.float32)

    def logsumexp(self, x: Array, block: int = 2048) -> Array:
        """log sum_v exp(head(x)[n, v]): x [N, D] -> float32 [N], over vocabulary blocks of
        `block` ids with a running max (no [N, V] array). On the 2-core CPU, Gemma's 262,144-id
        head at N = 256: 2.4 ms per row against 3.6 for `jax.nn.logsumexp(head(x))` at N = 64
        (its fastest N): the [N, block] products stay in cache (docs/benchmarks.md)."""
        x = self._scaled(x).astype(self.dtype)
        vocab = self.kernel.shape[0 if self.transposed else 1]
        axis = 0 if self.transposed else 1

        def part(start: int | Array, size: int) -> tuple[Array, Array]:  # (max [N], sum exp(l - max) [N])
            w = jax.lax.dynamic_slice_in_dim(self.kernel, start, size, axis).astype(self.dtype)
            logits = linear(x, w, self.transposed).astype(jnp.float32)
            top = logits.max(axis=-1)
            return top, jnp.exp(logits - top[:, None]).sum(axis=-1)

        def merge(a: tuple[Array, Array], b: tuple[Array, Array]) -> tuple[Array, Array]:
            top = jnp.maximum(a[0], b[0])
            return top, a[1] * jnp.exp(a[0] - top) + b[1] * jnp.exp(b[0] - top)

        full, rest = divmod(vocab, block)
        acc = part(0, min(block, vocab))
        if full > 1:
            acc = jax.lax.fori_loop(1, full, lambda i, a: merge(a, part(i * block, block)), acc)
        if rest and full:
            acc = merge(acc, part(full * block, rest))
        return acc[0] + jnp.log(acc[1])

    def logits_at(self, x: Array, ids: Array) -> Array:
        """The logit of one id per row: x [N, D], ids [N] int -> float32 [N], equal to
        `head(x)[n, ids[n]]` up to summation order, without the [N, V] product (rank
        classification's target logits; eval/packed_scoring.py)."""
        x = self._scaled(x)
        w = jnp.take(self.kernel, ids, axis=0) if self.transposed else jnp.take(self.kernel, ids, axis=1).T  # [N, D]
        f32 = lambda a: a.astype(self.dtype).astype(jnp.float32)  # noqa: E731  (products as a matmul's)
        return jnp.sum(f32(x) * f32(w), axis=-1)


class HeadKernel(nn.Module):
    """The untied output projection's parameter `kernel` [D, V], logical axes ('embed', 'vocab').

    `HeadKernel(V, init, name="lm_head")(D)` returns the kernel; the parameter path and its
    initial values are those of `DenseGeneral(V, ("embed", "vocab"), kernel_init=init)` under
    the same name, so checkpoints and HF conversion see the same tree.
    """

    vocab_size: int
    kernel_init: Initializer = nn.initializers.lecun_normal()
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, emb_dim: int) -> Array:
        return self.param("kernel", nn.with_logical_partitioning(self.kernel_init, ("embed", "vocab")),
                          (emb_dim, self.vocab_size), self.param_dtype)


def returns_hidden(model: Any) -> bool:
    """Whether `model.apply(..., return_hidden=True)` gives (hidden states, OutputHead)."""
    return "return_hidden" in inspect.signature(type(model).__call__).parameters


def loss_positions_first(mask: Array) -> Array:
    """Per row, the position indices with the masked (loss) positions first, each part in its
    original order (a stable argsort; no host sync, static shape).

    mask [G, N] bool -> int32 [G, N]. Example: [[0, 1, 0, 1, 1]] -> [[1, 3, 4, 0, 2]].
    """
    return jnp.argsort(jnp.logical_not(mask), axis=1, stable=True).astype(jnp.int32)


def take_positions(x: Array, index: Array) -> Array:
    """x [G, N, ...] at index [G, C] along axis 1 -> [G, C, ...] (row g reads only row g, so a
    batch-sharded x stays local)."""
    index = index.reshape(index.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, index, axis=1)


# Rematerialization choices of both models: what the backward may keep instead of recomputing.
_REMAT_SAVEABLE = {
    "full": None,  # keep nothing: recompute the whole layer
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
REMAT_POLICIES: tuple[str, ...] = ("none", *_REMAT_SAVEABLE)


def remat(module_cls: type[nn.Module], policy: str, *, scan_layers: bool) -> type[nn.Module]:
    """`module_cls` wrapped in nn.remat per the policy name ("none": returned unchanged)."""
    if policy == "none":
        return module_cls
    # CSE must stay possible inside a scan body, or XLA may hoist the recomputation away.
    return nn.remat(module_cls, policy=_REMAT_SAVEABLE[policy], prevent_cse=not scan_layers)


def rope_frequencies(
    head_dim: int, theta: float, llama3_scaling: tuple[float, float, float, int] | None = None
) -> np.ndarray:
    """Per-pair rotation frequencies [Dh/2]: theta^(-2i/Dh), optionally Llama-3.1 rescaled.

    `llama3_scaling` = (factor, low_freq_factor, high_freq_factor, original_max_positions), the
    "llama3" rope type of HF configs: pairs whose wavelength exceeds original/low_freq_factor
    rotate `factor` times slower, pairs shorter than original/high_freq_factor are unchanged,
    and the band between interpolates linearly in original/wavelength.

    Worked example (factor 8, low 1, high 4, original 8192): wavelength 100 -> unchanged;
    wavelength 20000 (> 8192) -> frequency / 8; wavelength 4096 -> smooth = (8192/4096 - 1)/3
    = 1/3, frequency * (2/3 / 8 + 1/3).
    """
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim // 2, dtype=np.float64) * 2.0 / head_dim))
    if llama3_scaling is not None:
        factor, low, high, original = llama3_scaling
        wavelength = 2.0 * np.pi / inv_freq
        smooth = np.clip((original / wavelength - low) / (high - low), 0.0, 1.0)
        inv_freq = inv_freq * ((1.0 - smooth) / factor + smooth)
    return inv_freq.astype(np.float32)


def rotary_embedding(
    x: Array,
    positions: Array,
    *,
    theta: float | None = None,
    llama3_scaling: tuple[float, float, float, int] | None = None,
    inv_freq: Array | None = None,
) -> Array:
    """Rotary position embedding in the 'rotate half' layout used by HF Llama and Gemma checkpoints.

    x [B, L, N, Dh], positions [B, L] int (restarting per packed segment) -> [B, L, N, Dh].
    Channel i < Dh/2 is paired with channel i + Dh/2 and rotated by angle
    positions * frequency_i, the frequencies [Dh/2] being `inv_freq` when given (e.g. chosen per
    layer inside a scan) else `rope_frequencies(Dh, theta, llama3_scaling)`. Angles are float32.

    Worked example (Dh = 2, theta irrelevant since i = 0 has frequency 1):
        x = [[a, b]] at position p  ->  [[a cos p - b sin p, b cos p + a sin p]]
    """
    half = x.shape[-1] // 2
    if inv_freq is None:
        if theta is None:
            raise ValueError("rotary_embedding needs theta or inv_freq")
        inv_freq = rope_frequencies(x.shape[-1], theta, llama3_scaling)
    # [B, L, 1, Dh/2]
    angles = positions.astype(jnp.float32)[:, :, None, None] * jnp.asarray(inv_freq, jnp.float32)
    sin, cos = jnp.sin(angles), jnp.cos(angles)
    x32 = x.astype(jnp.float32)
    x1, x2 = x32[..., :half], x32[..., half:]
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)
