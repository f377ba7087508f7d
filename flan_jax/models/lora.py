"""Low-rank adapters (LoRA, Hu et al. 2021, arXiv:2106.09685) for every flan_jax model family.

A chosen linear layer's output W0 x gains a low-rank branch: h = W0 x + (alpha / r) B A dropout(x),
with A [in, r] Gaussian-initialised and B [r, out] zero-initialised (the paper's Section 4.1), so
a fresh adapter leaves the base model's output unchanged. The base stays frozen; only A and B
train.

Which layers: every `layers.DenseGeneral` whose kernel logical axes or module name is in
`LoraConfig.targets`. The default ("heads", "kv_heads") selects all attention projections (q, k, v
and the output, in T5, the Llama-style decoder and Gemma); "mlp" adds the MLP kernels, "vocab"
the untied output head. The models are not modified: `apply` runs the model under a flax method
interceptor that adds the branch after each selected DenseGeneral call.

Adapters are a flat dict keyed by the layer's module path ("layers_0/attention/query"):

    {"layers_0/attention/query": {"lora_a": [D, r] ('embed', 'lora_rank'),
                                  "lora_b": [r, H, Dh] ('lora_rank', 'heads', 'head_dim')}, ...}

i.e. A's shape is the kernel's input dims + (r,), B's is (r,) + its output dims, with the
kernel's logical axes, so adapters are sharded by the same rules table (`lora_rank` replicated).

Not supported: `scan_layers` models (the stacked layers share one module path; refused with a
FlanJaxError). Why not qwix: qwix adds LoRA by intercepting `dot_general` inside a module, but
flan_jax's linear layers run their matmul inside a `jax.custom_vjp` with a hand-written backward
(`layers.linear`), which such an interception would bypass in the backward pass.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp

from flan_jax.errors import FlanJaxError
from flan_jax.models import layers

Adapters = dict[str, dict[str, jax.Array]]


@gin.configurable
@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """rank r, alpha (the branch is scaled by alpha / r), dropout on the branch input, targets."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("heads", "kv_heads")
    # storage dtype of the frozen base parameters ("bfloat16" halves their memory)
    base_dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        if self.rank < 1:
            raise FlanJaxError(f"LoraConfig.rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise FlanJaxError(f"LoraConfig.dropout must be in [0, 1), got {self.dropout}")
        if not self.targets:
            raise FlanJaxError("LoraConfig.targets is empty: name logical axes or module names")
        if self.base_dtype not in ("float32", "bfloat16", "float16"):
            raise FlanJaxError(f"LoraConfig.base_dtype {self.base_dtype!r} not in float32/bfloat16/float16")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def _selected(module: nn.Module, config: LoraConfig) -> bool:
    return isinstance(module, layers.DenseGeneral) and (
        module.name in config.targets or any(a in config.targets for a in module.kernel_axes))


def _path(module: nn.Module) -> str:
    return "/".join(str(p) for p in module.path)


def adapter_specs(model: nn.Module, example_batch: Mapping[str, Any], config: LoraConfig
                  ) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[str | None, ...]]]:
    """{path: (input dims, output dims, kernel logical axes)} of the selected layers (shapes only)."""
    if getattr(getattr(model, "config", None), "scan_layers", False):
        raise FlanJaxError("LoRA: models with scan_layers=True are not supported; set scan_layers=False")
    found: dict[str, Any] = {}

    def record(next_fun, args, kwargs, context):
        mod = context.module
        if context.method_name == "__call__" and _selected(mod, config):
            x = args[0]
            in_dims = tuple(x.shape[x.ndim - mod.num_in:])
            out_dims = tuple((mod.features,) if isinstance(mod.features, int) else mod.features)
            found[_path(mod)] = (in_dims, out_dims, tuple(mod.kernel_axes))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), example_batch))
    if not found:
        raise FlanJaxError(f"LoRA: no linear layer matches targets {config.targets} "
                           f"(logical axes such as 'heads', 'kv_heads', 'mlp', 'vocab' or module names)")
    return found


def init_adapters(model: nn.Module, example_batch: Mapping[str, Any], config: LoraConfig,
                  rng: jax.Array, *, boxed: bool = False) -> Adapters:
    """Fresh adapters: A ~ N(0, 1/in), B = 0. `boxed` wraps them with logical axis names."""
    out: Adapters = {}
    for i, (path, (in_dims, out_dims, axes)) in enumerate(sorted(adapter_specs(model, example_batch, config).items())):
        n_in = math.prod(in_dims)
        a = jax.random.normal(jax.random.fold_in(rng, i), in_dims + (config.rank,), jnp.float32) / math.sqrt(n_in)
        b = jnp.zeros((config.rank,) + out_dims, jnp.float32)
        if boxed:
            n = len(in_dims)
            a = nn.LogicallyPartitioned(a, tuple(axes[:n]) + ("lora_rank",))
            b = nn.LogicallyPartitioned(b, ("lora_rank",) + tuple(axes[n:]))
        out[path] = {"lora_a": a, "lora_b": b}
    return out


def _branch(x: jax.Array, a: jax.Array, b: jax.Array, scale: float, dtype: Any) -> jax.Array:
    """x [..., *in] -> (x A) B * scale [..., *out]; two small GEMMs on flattened views."""
    n_in = a.ndim - 1
    batch = x.shape[: x.ndim - n_in]
    h = x.astype(dtype).reshape(batch + (-1,)) @ a.reshape(-1, a.shape[-1]).astype(dtype)
    y = h @ b.reshape(b.shape[0], -1).astype(dtype)
    return (y * scale).reshape(batch + b.shape[1:])


def apply(model: nn.Module, base_params: Any, adapters: Adapters, config: LoraConfig, *args: Any,
          dropout_rng: jax.Array | None = None, method: Any = None, **kwargs: Any) -> Any:
    """`model.apply({"params": base_params}, *args)` with every adapter's branch added.

    Gradients reach `adapters` only: the base is wrapped in stop_gradient. `dropout_rng` (with
    config.dropout > 0) drops branch inputs; None runs deterministically (evaluation).
    """
    base = jax.lax.stop_gradient(base_params)
    used: set[str] = set()

    def add_branch(next_fun, fargs, fkwargs, context):
        y = next_fun(*fargs, **fkwargs)
        mod = context.module
        if context.method_name != "__call__" or not isinstance(mod, layers.DenseGeneral):
            return y
        path = _path(mod)
        if path not in adapters:
            return y
        used.add(path)
        x = fargs[0]
        if dropout_rng is not None and config.dropout > 0:
            keep = jax.random.bernoulli(jax.random.fold_in(dropout_rng, zlib.crc32(path.encode())),
                                        1.0 - config.dropout, x.shape)
            x = jnp.where(keep, x / (1.0 - config.dropout), 0).astype(x.dtype)
        ad = adapters[path]
        return y + _branch(x, ad["lora_a"], ad["lora_b"], config.scale, y.dtype).astype(y.dtype)

    with nn.intercept_methods(add_branch):
        out = model.apply({"params": base}, *args, method=method, **kwargs)
    missing = sorted(set(adapters) - used)
    if missing:
        raise FlanJaxError(f"LoRA: adapters for layers the model does not have: {missing[:3]}")
    return out


def merge(base_params: Any, adapters: Adapters, config: LoraConfig) -> Any:
    """Dense parameters W0 + (alpha / r) A B (float32), e.g. for export to HF."""
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_leaves_with_path(base_params)}
    for path, ad in adapters.items():
        key = f"{path}/kernel"
        if key not in flat:
            raise FlanJaxError(f"LoRA merge: the base has no parameter {key!r}")
        a, b = ad["lora_a"], ad["lora_b"]
        delta = (a.reshape(-1, a.shape[-1]) @ b.reshape(b.shape[0], -1)) * config.scale
        flat[key] = (jnp.asarray(flat[key], jnp.float32) + delta.reshape(flat[key].shape))
    from flan_jax.models.params_io import unflatten_params  # noqa: PLC0415

    return unflatten_params(flat)


def num_adapter_params(adapters: Adapters) -> int:
    return int(sum(x.size for x in jax.tree.leaves(adapters)))
