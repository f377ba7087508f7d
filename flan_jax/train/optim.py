"""Optimizers and learning-rate schedules, each a gin-configurable factory.

`train(optimizer=...)` takes an `Optimizer`: the optax transformation plus its learning-rate
schedule (kept separately so the trainer can log the rate of each step). Gin example:

    train.optimizer = @adafactor()
    adafactor.learning_rate = @lr_schedule()
    lr_schedule.kind = "constant"
    lr_schedule.peak = 1e-3

Defaults follow T5 fine-tuning: Adafactor with factored second moments, decay rate 0.8, no
momentum (no first moment), update clipping threshold 1.0, updates scaled by the parameter RMS,
and a constant learning rate of 1e-3.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import gin
import jax.numpy as jnp
import optax

from flan_jax.errors import FlanJaxError

Schedule = Callable[[jnp.ndarray], jnp.ndarray]
SCHEDULE_KINDS = ("constant", "rsqrt", "cosine", "linear")


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """An optax transformation and the schedule that feeds it (for the learning-rate metric)."""

    tx: optax.GradientTransformation
    learning_rate: Schedule


@gin.configurable
def lr_schedule(
    kind: str = "constant",
    peak: float = 1e-3,
    warmup_steps: int = 0,
    decay_steps: int = 0,
    end_value: float = 0.0,
) -> Schedule:
    """Learning rate as a function of the step, with a linear warmup from 0 over `warmup_steps`.

    constant: `peak` after warmup.
    rsqrt:    peak * sqrt(warmup_steps / step) after warmup (T5 pre-training's inverse square
              root; with warmup_steps 0 it is peak / sqrt(max(step, 1))).
    cosine:   cosine decay from peak to end_value over `decay_steps` steps after warmup.
    linear:   linear decay from peak to end_value over `decay_steps` steps after warmup.
    """
    if kind not in SCHEDULE_KINDS:
        raise FlanJaxError(f"lr_schedule.kind {kind!r}: expected one of {SCHEDULE_KINDS}")
    if kind in ("cosine", "linear") and decay_steps <= 0:
        raise FlanJaxError(f"lr_schedule.kind {kind!r} needs lr_schedule.decay_steps > 0")
    if kind == "constant":
        main: Schedule = optax.constant_schedule(peak)
    elif kind == "rsqrt":
        scale = math.sqrt(max(warmup_steps, 1))

        def main(count):  # count restarts at 0 after the warmup
            return peak * scale / jnp.sqrt(jnp.maximum(count + warmup_steps, max(warmup_steps, 1)))
    elif kind == "cosine":
        main = optax.cosine_decay_schedule(peak, decay_steps, alpha=end_value / peak if peak else 0.0)
    else:
        main = optax.linear_schedule(peak, end_value, decay_steps)
    if warmup_steps <= 0:
        return main
    warmup = optax.linear_schedule(0.0, peak, warmup_steps)
    return optax.join_schedules([warmup, main], [warmup_steps])


def _with_clipping(tx: optax.GradientTransformation, max_grad_norm: float | None):
    if max_grad_norm is None or max_grad_norm <= 0:
        return tx
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)


@gin.configurable
def adafactor(
    learning_rate: float | Schedule = 1e-3,
    decay_rate: float = 0.8,
    clipping_threshold: float | None = 1.0,
    momentum: float | None = None,
    multiply_by_parameter_scale: bool = True,
    factored: bool = True,
    weight_decay: float | None = None,
    max_grad_norm: float | None = None,
) -> Optimizer:
    """Adafactor with T5's fine-tuning defaults (see the module docstring).

    `clipping_threshold` is Adafactor's update clipping (T5's 1.0); `max_grad_norm` adds a
    global-norm gradient clip before it (off by default, as in T5).
    """
    schedule = learning_rate if callable(learning_rate) else optax.constant_schedule(learning_rate)
    tx = optax.adafactor(
        learning_rate=schedule,
        decay_rate=decay_rate,
        clipping_threshold=clipping_threshold,
        momentum=momentum,
        multiply_by_parameter_scale=multiply_by_parameter_scale,
        factored=factored,
        weight_decay_rate=weight_decay,
    )
    return Optimizer(_with_clipping(tx, max_grad_norm), schedule)


@gin.configurable
def adamw(
    learning_rate: float | Schedule = 1e-4,
    b1: float = 0.9,
    b2: float = 0.95,
    eps: float = 1e-8,
    weight_decay: float = 0.1,
    max_grad_norm: float | None = 1.0,
) -> Optimizer:
    """AdamW (decoupled weight decay) with a global-norm gradient clip, as for Llama-style LMs."""
    schedule = learning_rate if callable(learning_rate) else optax.constant_schedule(learning_rate)
    tx = optax.adamw(schedule, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
    return Optimizer(_with_clipping(tx, max_grad_norm), schedule)
