"""The train state and the ONE place where its shardings are decided.

    abstract = jax.eval_shape(init)            # boxed ShapeDtypeStructs with logical axis names
    shardings = logical rules -> NamedShardings (params; optimizer moments follow their param)
    state = jax.jit(init, out_shardings=shardings)(rng)   # born sharded, never gathered

A pretrained parameter tree takes the same route: placed with the parameter shardings, then the
optimizer state is initialised by a jit with the optimizer shardings.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flan_jax.errors import FlanJaxError
from flan_jax.models.sharding import LOGICAL_AXIS_RULES, LogicalRules, logical_shardings


class TrainState(flax.struct.PyTreeNode):
    """Everything the optimizer changes: params (float32), optimizer state, step count; and
    `frozen`, parameters the step reads but never changes (a LoRA run's base model,
    train/lora_training.py), which checkpoints leave out (they are rebuilt from their source)."""

    step: jax.Array
    params: Any
    opt_state: Any
    frozen: Any = None


def _is_box(x: Any) -> bool:
    return isinstance(x, nn.LogicallyPartitioned)


def _opt_state_shardings(tx: optax.GradientTransformation, abstract_opt: Any, abstract_params: Any,
                         param_shardings: Any, mesh: Mesh) -> Any:
    """A moment shaped like its parameter is sharded like it; anything else (Adafactor's
    factored row/column statistics, counters) is small and replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def one(leaf: Any, param: Any, sharding: Any) -> NamedSharding:
        return sharding if getattr(leaf, "shape", None) == param.shape else replicated

    return optax.tree_map_params(
        tx, one, abstract_opt, abstract_params, param_shardings,
        transform_non_params=lambda _: replicated,
    )


def state_shardings(model: nn.Module, tx: optax.GradientTransformation, example_batch: Mapping[str, Any],
                    mesh: Mesh, rules: LogicalRules = LOGICAL_AXIS_RULES) -> tuple[TrainState, TrainState]:
    """(abstract state, NamedSharding tree of the same structure), from shapes only (no FLOPs)."""
    boxed = jax.eval_shape(lambda rng: model.init(rng, example_batch)["params"], jax.random.PRNGKey(0))
    abstract_params = nn.meta.unbox(boxed)
    param_shardings = logical_shardings(boxed, mesh, rules)
    abstract_opt = jax.eval_shape(tx.init, abstract_params)
    opt_shardings = _opt_state_shardings(tx, abstract_opt, abstract_params, param_shardings, mesh)
    abstract = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=abstract_params,
                          opt_state=abstract_opt)
    shardings = TrainState(step=NamedSharding(mesh, PartitionSpec()), params=param_shardings,
                           opt_state=opt_shardings)
    return abstract, shardings


def create_state(model: nn.Module, tx: optax.GradientTransformation, example_batch: Mapping[str, Any],
                 abstract: TrainState, shardings: TrainState, seed: int = 0,
                 params: Any | None = None) -> TrainState:
    """A fresh sharded state: random init from `seed`, or the given (pretrained) params."""
    if params is None:
        def init(rng: jax.Array) -> TrainState:
            p = nn.meta.unbox(model.init(rng, example_batch)["params"])
            return TrainState(step=jnp.zeros((), jnp.int32), params=p, opt_state=tx.init(p))

        return jax.jit(init, out_shardings=shardings)(jax.random.PRNGKey(seed))
    check_same_shapes(abstract.params, params, what="pretrained parameters")
    params = jax.device_put(jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params), shardings.params)

    def init_opt(p: Any) -> TrainState:
        return TrainState(step=jnp.zeros((), jnp.int32), params=p, opt_state=tx.init(p))

    return jax.jit(init_opt, in_shardings=(shardings.params,), out_shardings=shardings, donate_argnums=0)(params)


def check_same_shapes(expected: Any, got: Any, *, what: str) -> None:
    """Raise a FlanJaxError naming the first parameter path whose presence or shape differs.

    `expected` holds arrays or ShapeDtypeStructs; `got` anything with a shape.
    """
    want = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    have = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(got)}
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or extra:
        raise FlanJaxError(f"{what} do not match the model: missing {missing[:3]}, unexpected {extra[:3]}")
    for key, w in want.items():
        w_shape, h_shape = tuple(w.shape), tuple(np.shape(have[key]))
        if w_shape != h_shape:
            raise FlanJaxError(f"{what}: parameter {key} has shape {h_shape}, the model expects {tuple(w_shape)}")


def num_params(abstract_params: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(abstract_params)))
