"""The one table mapping logical axis names to mesh axes, and helpers that apply it.

Mesh axes (`train/mesh.py` builds the mesh):
  data    pure data parallelism: the batch is split, parameters are replicated.
  fsdp    data parallelism whose parameters (and optimizer state) are also split, along 'embed'.
  tensor  model parallelism: heads, mlp columns and vocab are split (Megatron style).

Rules are tried in order; a logical axis takes the first rule whose mesh axes are not already
used by another dimension of the same array (flax semantics). That is how one name serves both
parameters and activations: a kernel ('embed', 'mlp') becomes P('fsdp', 'tensor'), while an
activation ('batch', 'length', 'embed') becomes P(('data', 'fsdp'), None, None) because 'fsdp'
is taken by 'batch' and the second 'embed' rule says replicate.

| logical axis | mesh axes          | where it appears                                    |
|--------------|--------------------|-----------------------------------------------------|
| batch        | ('data', 'fsdp')   | activations, first dim                              |
| embed        | 'fsdp' else None   | kernels' model dim; activations' D (replicated)     |
| mlp          | 'tensor'           | SwiGLU / gated-GELU hidden dim                      |
| heads        | 'tensor'           | query heads (kernels and activations)               |
| kv_heads     | 'tensor'           | key/value heads (GQA); replicated if K % tensor != 0|
| vocab        | 'tensor'           | embedding table rows, logits' last dim              |
| head_dim     | None               | never split: RoPE mixes its two halves              |
| length       | None               | sequence positions                                  |
| layers       | None               | stacked-layer axis of scanned parameters            |
| relpos_buckets | None             | T5 relative position bias table                     |
| lora_rank    | None               | LoRA adapters' rank dim (models/lora.py)            |

`logical_shardings` drops a mesh axis from any dimension it does not divide (e.g. 8 kv heads on
a 16-way 'tensor' axis, or a tiny test vocabulary), replicating that dimension instead of failing.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

LogicalRules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

LOGICAL_AXIS_RULES: LogicalRules = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("embed", None),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("vocab", "tensor"),
    ("head_dim", None),
    ("length", None),
    ("layers", None),
    ("relpos_buckets", None),
    ("lora_rank", None),
)


def rules_for_mesh(mesh: Mesh, rules: LogicalRules = LOGICAL_AXIS_RULES) -> LogicalRules:
    """The rules with mesh axes that `mesh` lacks removed (e.g. a mesh with only 'data')."""
    present = set(mesh.axis_names)

    def keep(target: Any) -> Any:
        if target is None:
            return None
        if isinstance(target, str):
            return target if target in present else None
        kept = tuple(t for t in target if t in present)
        return kept if len(kept) > 1 else (kept[0] if kept else None)

    return tuple((name, keep(target)) for name, target in rules)


def _axis_size(mesh: Mesh, target: Any) -> int:
    names = (target,) if isinstance(target, str) else tuple(target)
    size = 1
    for name in names:
        size *= mesh.shape[name]
    return size


def _fit_to_shape(spec: PartitionSpec, shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
    """Replaces with None any entry whose mesh size does not divide that dimension."""
    entries = list(spec) + [None] * (len(shape) - len(spec))
    fitted = [
        None if target is not None and dim % _axis_size(mesh, target) != 0 else target
        for target, dim in zip(entries, shape)
    ]
    return PartitionSpec(*fitted)


def logical_to_mesh_spec(
    logical_axes: Sequence[str | None], mesh: Mesh, rules: LogicalRules = LOGICAL_AXIS_RULES
) -> PartitionSpec:
    """One array's logical names -> mesh PartitionSpec, e.g. ('embed', 'mlp') -> P('fsdp', 'tensor')."""
    return nn.logical_to_mesh_axes(tuple(logical_axes), rules_for_mesh(mesh, rules))


def logical_shardings(
    abstract_params: Any, mesh: Mesh, rules: LogicalRules = LOGICAL_AXIS_RULES
) -> Any:
    """NamedShardings for a parameter tree carrying flax logical partitioning boxes.

    `abstract_params` is typically `jax.eval_shape(model.init, ...)["params"]` (boxed
    ShapeDtypeStructs). The result has the unboxed tree structure (a NamedSharding where each
    array is) and works as `out_shardings` of a jitted init that returns boxed or unboxed params.
    Leaves without logical names are replicated.
    """
    mesh_rules = rules_for_mesh(mesh, rules)

    def one(leaf: Any) -> NamedSharding:
        if isinstance(leaf, nn.LogicallyPartitioned):
            spec = nn.logical_to_mesh_axes(leaf.names, mesh_rules)
            shape = leaf.value.shape
        else:
            spec, shape = PartitionSpec(), getattr(leaf, "shape", ())
        return NamedSharding(mesh, _fit_to_shape(spec, shape, mesh))

    return jax.tree_util.tree_map(
        one, abstract_params, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned)
    )


def logical_axes_tree(abstract_params: Any) -> Any:
    """The logical names of each parameter (None for unannotated leaves), for docs and tests."""
    return jax.tree_util.tree_map(
        lambda leaf: leaf.names if isinstance(leaf, nn.LogicallyPartitioned) else None,
        abstract_params,
        is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned),
    )
