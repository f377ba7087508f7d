"""One optimizer step over k micro-batches, jitted with explicit shardings and a donated state.

Accumulation: the loss returns sums, so the step adds loss sums, aux sums and gradients over the
k micro-batches (a `lax.scan`, one micro-batch of activations alive at a time) and divides by the
normalizer of the WHOLE batch once. That is the gradient of one k-times-larger batch, up to float
summation order.

Micro-batch i takes rows i, i+k, i+2k, ... of the batch (reshape [B/k, k, ...] then swap the
first two axes), so each data shard's contiguous block of rows feeds every micro-batch equally
and no rows move between devices. Example, B=4, k=2: rows [r0, r1, r2, r3] -> micro-batches
[[r0, r2], [r1, r3]].
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flan_jax.models import layers
from flan_jax.models.sharding import LOGICAL_AXIS_RULES, LogicalRules, rules_for_mesh
from flan_jax.train.loss import cross_entropy_loss, head_cross_entropy_loss
from flan_jax.train.mesh import BATCH_AXES, batch_sharding, batch_shards
from flan_jax.train.optim import Optimizer
from flan_jax.train.state import TrainState

Batch = Mapping[str, jax.Array]
# (params, batch, dropout rng) -> logits [B, L, V]; model_apply_fn's also takes return_hidden=True
ApplyFn = Callable[..., Any]


def split_microbatches(batch: Batch, k: int) -> dict[str, jax.Array]:
    """[B, ...] -> [k, B/k, ...] with micro-batch i = rows i, i+k, ... (see module docstring)."""
    def one(x: jax.Array) -> jax.Array:
        x = x.reshape((x.shape[0] // k, k) + x.shape[1:])
        return jnp.swapaxes(x, 0, 1)

    return {name: one(jnp.asarray(x)) for name, x in batch.items()}


def _cast_floats(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def make_train_step(
    apply_fn: ApplyFn,
    optimizer: Optimizer,
    *,
    num_microbatches: int = 1,
    loss_kwargs: Mapping[str, Any] | None = None,
    compute_dtype: Any | None = None,
    mesh: Mesh | None = None,
    dropout_seed: int = 0,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """The pure (un-jitted) step: (state, batch) -> (new state, metrics of this step).

    compute_dtype: e.g. jnp.bfloat16 runs the forward/backward on a bf16 copy of the float32
    params (gradients flow back to float32 through the cast); None keeps the params' dtype.
    The dropout rng of micro-batch i at step s is fold_in(fold_in(key(dropout_seed), s), i), a
    pure function of the step, so a resumed run draws the same dropout masks.

    loss_kwargs: `cross_entropy_loss` options plus `head_capacity` (train_setup.loss_options): a
    fraction in (0, 1] computes the output projection and the loss at the loss positions only
    (`head_cross_entropy_loss`, in groups of the batch shards of `mesh`) when `apply_fn`
    supports it (`model_apply_fn` of a model whose `__call__` takes `return_hidden`); None, or
    an apply_fn without that support, computes the full [B, L, V] logits.
    """
    loss_kwargs = dict(loss_kwargs or {})
    head_capacity = loss_kwargs.pop("head_capacity", None)
    at_positions = head_capacity is not None and getattr(apply_fn, "returns_hidden", False)
    groups = 1 if mesh is None else batch_shards(mesh)

    def micro_loss(params: Any, micro: Batch, rng: jax.Array, frozen: Any
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
        p = params if compute_dtype is None else _cast_floats(params, compute_dtype)
        # frozen parameters (a LoRA base) are an argument the gradient is not taken for
        extra = {} if frozen is None else {"frozen": frozen}
        # named scopes label the ops of the loss and the update in profiles (bench/op_profile.py)
        if at_positions:
            hidden, head = apply_fn(p, micro, rng, return_hidden=True, **extra)
            with jax.named_scope("loss"):
                return head_cross_entropy_loss(hidden, head, micro, capacity=head_capacity, groups=groups,
                                               **loss_kwargs)
        logits = apply_fn(p, micro, rng, **extra)
        with jax.named_scope("loss"):
            return cross_entropy_loss(logits, micro, **loss_kwargs)

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def summed_grads(params: Any, batch: Batch, rng: jax.Array, frozen: Any = None
                     ) -> tuple[jax.Array, dict[str, jax.Array], Any]:
        if num_microbatches == 1:
            (loss_sum, aux), grads = grad_fn(params, batch, jax.random.fold_in(rng, 0), frozen)
            return loss_sum, aux, grads
        micro = split_microbatches(batch, num_microbatches)
        if mesh is not None:  # keep each micro-batch spread over the batch shards
            spec = NamedSharding(mesh, PartitionSpec(None, BATCH_AXES))
            micro = jax.lax.with_sharding_constraint(micro, spec)

        def body(carry, mb_and_index):
            loss_acc, aux_acc, grad_acc = carry
            mb, i = mb_and_index
            (loss_sum, aux), grads = grad_fn(params, mb, jax.random.fold_in(rng, i), frozen)
            return (loss_acc + loss_sum, jax.tree.map(jnp.add, aux_acc, aux),
                    jax.tree.map(jnp.add, grad_acc, grads)), None

        zero_aux = {k: jnp.zeros((), jnp.float32) for k in ("weight_sum", "correct", "z_loss", "normalizer")}
        zero_grads = jax.tree.map(jnp.zeros_like, params)
        init = (jnp.zeros((), jnp.float32), zero_aux, zero_grads)
        (loss_sum, aux, grads), _ = jax.lax.scan(body, init, (micro, jnp.arange(num_microbatches)))
        return loss_sum, aux, grads

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        rng = jax.random.fold_in(jax.random.PRNGKey(dropout_seed), state.step)
        loss_sum, aux, grads = summed_grads(state.params, batch, rng, state.frozen)
        # Divide once by the whole batch's normalizer (the target tokens, or sequences).
        denom = jnp.maximum(aux["normalizer"], 1e-9)
        with jax.named_scope("optimizer"):
            grads = jax.tree.map(lambda g: g / denom, grads)
            updates, opt_state = optimizer.tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        metrics = {
            "loss": loss_sum / denom,
            "z_loss": aux["z_loss"] / denom,
            "accuracy": aux["correct"] / jnp.maximum(aux["weight_sum"], 1e-9),
            "target_tokens": aux["weight_sum"],
            "learning_rate": jnp.asarray(optimizer.learning_rate(state.step), jnp.float32),
            "grad_norm": optax.global_norm(grads),
            # the host stops on a non-finite value BEFORE saving, so bad params never reach disk
            "update_norm": optax.global_norm(updates),
        }
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state, frozen=state.frozen), metrics

    return step


def jit_train_step(step_fn: Callable, mesh: Mesh, shardings: TrainState,
                   rules: LogicalRules = LOGICAL_AXIS_RULES) -> Callable:
    """jit with the state's shardings in and out, the batch split over data x fsdp, metrics
    replicated, and the input state donated (its buffers are reused for the new state)."""
    replicated = NamedSharding(mesh, PartitionSpec())
    jitted = jax.jit(step_fn, in_shardings=(shardings, batch_sharding(mesh)),
                     out_shardings=(shardings, replicated), donate_argnums=0)
    mesh_rules = rules_for_mesh(mesh, rules)

    def run(state: TrainState, batch: Batch):
        # Activation constraints (nn.with_logical_constraint) need the mesh and rules while tracing.
        with jax.set_mesh(mesh), nn.logical_axis_rules(mesh_rules):
            return jitted(state, batch)

    def lower(state: Any, batch: Any) -> Any:  # AOT: run.lower(state, batch).compile(), under the mesh and rules
        with jax.set_mesh(mesh), nn.logical_axis_rules(mesh_rules):
            return jitted.lower(state, batch)

    run.jitted, run.lower = jitted, lower
    return run


def global_batch_spec(batch: Mapping[str, Any], batch_size: int, mesh: Mesh) -> dict[str, jax.ShapeDtypeStruct]:
    """The global batch's fields as ShapeDtypeStructs split over data x fsdp, for compiling a
    step before any batch is read: `batch` is any batch of the run's format (arrays of any
    row count; only the fields, the shapes after the first axis and the dtypes are read).

    Example: {"decoder_target_tokens": int32 [1, 128]}, batch_size 8 ->
    {"decoder_target_tokens": ShapeDtypeStruct((8, 128), int32, sharding=<rows over data x fsdp>)}.
    """
    rows = batch_sharding(mesh)
    return {k: jax.ShapeDtypeStruct((batch_size,) + tuple(v.shape[1:]), v.dtype, sharding=rows)
            for k, v in batch.items()}


def fits_spec(batch: Mapping[str, Any], spec: Mapping[str, jax.ShapeDtypeStruct]) -> bool:
    """Whether a host batch has exactly the fields, per-row shapes and dtypes of `spec` (a step
    compiled for `spec` accepts its global batch)."""
    return set(batch) == set(spec) and all(
        tuple(v.shape[1:]) == spec[k].shape[1:] and v.dtype == spec[k].dtype for k, v in batch.items())


def model_apply_fn(model: nn.Module) -> ApplyFn:
    """(params, batch, rng) -> logits for any flan_jax model (`model.apply({"params": p}, batch)`);
    models whose config has dropout_rate > 0 (T5) run with enable_dropout and the rng.

    When the model's `__call__` takes `return_hidden` (every flan_jax family), the function has
    `returns_hidden = True` and `apply(params, batch, rng, return_hidden=True)` gives
    (hidden [B, L, D], layers.OutputHead) instead of the logits.
    """
    dropout = float(getattr(getattr(model, "config", None), "dropout_rate", 0.0) or 0.0) > 0

    def apply(params: Any, batch: Batch, rng: jax.Array, return_hidden: bool = False) -> Any:
        kwargs = {"return_hidden": True} if return_hidden else {}
        if dropout:
            return model.apply({"params": params}, batch, enable_dropout=True, rngs={"dropout": rng}, **kwargs)
        return model.apply({"params": params}, batch, **kwargs)

    apply.returns_hidden = layers.returns_hidden(model)
    return apply
