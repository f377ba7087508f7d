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

Weight decay and its mask. The FLAN recipes fine-tune with Adafactor and no weight decay (FLAN
2021, Wei et al., Appendix: Adafactor, constant learning rate 3e-5; Flan 2022 / t5x's
`t5_1_1` fine-tuning configs: `adafactor_decay_rate 0.8`, no `weight_decay_rate`), so the
default `adafactor` decays nothing. When weight decay is on (AdamW's default 0.1, or
`adafactor.weight_decay`), `weight_decay_mask` picks the parameters it applies to:

    "standard" (default)  every parameter except norm scales, biases and embedding tables
                          (leaf names `scale`, `bias`, `embedding`, `rel_embedding`, or a path
                          part containing "norm")
    "all"                 every parameter (flan_jax's behaviour before this mask existed)
    ["regex", ...]        every parameter whose path ("layers_0/mlp/wi/kernel") matches none
                          of the patterns (MaxText's `adamw_mask` semantics)

Conventions behind "standard": HF Trainer (`Trainer.get_decay_parameter_names`, transformers
4.x/5.x) excludes biases and every LayerNorm / RMSNorm weight; MaxText's `adamw_mask` is a list
of such path patterns (empty by default: it decays everything unless configured). Embeddings
are excluded here as well (HF Trainer decays them; GPT-style recipes, e.g. minGPT's and OLMo's
`decay_embeddings=False`, do not): a table row only gets gradient when its token is seen, so
decay would shrink rare tokens' rows on every step they are absent. With a zero gradient Adam's
step is 0, so a decayed parameter moves by -lr * wd * p and an excluded one does not move.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import gin
import jax
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


MASK_NAMES = ("standard", "all")
_NO_DECAY_LEAVES = frozenset({"scale", "bias", "embedding", "rel_embedding"})


def _path_text(path: Sequence[Any]) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _decayed(path_text: str, mask: str | tuple[re.Pattern, ...]) -> bool:
    if mask == "all":
        return True
    if mask == "standard":
        parts = path_text.split("/")
        return parts[-1] not in _NO_DECAY_LEAVES and not any("norm" in p.lower() for p in parts)
    return not any(pattern.search(path_text) for pattern in mask)


def _check_mask(mask: Any) -> str | tuple[re.Pattern, ...]:
    if isinstance(mask, str):
        if mask not in MASK_NAMES:
            raise FlanJaxError(f"weight_decay_mask {mask!r}: expected one of {MASK_NAMES} or a "
                               "list of path patterns (regex) to exclude from weight decay")
        return mask
    if isinstance(mask, Sequence) and all(isinstance(p, str) for p in mask):
        try:
            return tuple(re.compile(p) for p in mask)
        except re.error as e:
            raise FlanJaxError(f"weight_decay_mask pattern {e.pattern!r}: not a regex ({e})") from None
    raise FlanJaxError(f"weight_decay_mask {mask!r}: expected one of {MASK_NAMES} or a list of "
                       "path patterns (regex) to exclude from weight decay")


def decay_mask(params: Any, mask: str | Sequence[str] = "standard") -> Any:
    """A tree of bools like `params`: True where weight decay applies (module doc).

        {"final_norm": {"scale": .}, "layers_0": {"mlp": {"wi": {"kernel": ., "bias": .}}}}, "standard"
        -> {"final_norm": {"scale": False}, "layers_0": {"mlp": {"wi": {"kernel": True, "bias": False}}}}
    """
    checked = _check_mask(mask)
    return jax.tree_util.tree_map_with_path(lambda path, _: _decayed(_path_text(path), checked), params)


def _mask_fn(mask: str | Sequence[str]) -> Callable[[Any], Any] | None:
    checked = _check_mask(mask)
    if checked == "all":
        return None  # optax: no mask, every parameter decays
    return lambda params: decay_mask(params, mask)


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
    weight_decay_mask: str | Sequence[str] = "standard",
) -> Optimizer:
    """Adafactor with T5's fine-tuning defaults (see the module docstring).

    `clipping_threshold` is Adafactor's update clipping (T5's 1.0); `max_grad_norm` adds a
    global-norm gradient clip before it (off by default, as in T5). `weight_decay` (off, as in
    the FLAN recipes) applies where `weight_decay_mask` says (module doc).
    """
    mask = _mask_fn(weight_decay_mask)
    schedule = learning_rate if callable(learning_rate) else optax.constant_schedule(learning_rate)
    tx = optax.adafactor(
        learning_rate=schedule,
        decay_rate=decay_rate,
        clipping_threshold=clipping_threshold,
        momentum=momentum,
        multiply_by_parameter_scale=multiply_by_parameter_scale,
        factored=factored,
        weight_decay_rate=weight_decay,
        weight_decay_mask=mask,
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
    weight_decay_mask: str | Sequence[str] = "standard",
) -> Optimizer:
    """AdamW (decoupled weight decay) with a global-norm gradient clip, as for Llama-style LMs.

    Decay applies where `weight_decay_mask` says: by default not to norm scales, biases and
    embeddings; "all" decays every parameter (the behaviour before the mask); a list of regex
    patterns excludes the matching parameter paths (module doc). Gin:
    `adamw.weight_decay_mask = "all"`.
    """
    mask = _mask_fn(weight_decay_mask)
    schedule = learning_rate if callable(learning_rate) else optax.constant_schedule(learning_rate)
    tx = optax.adamw(schedule, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=mask)
    return Optimizer(_with_clipping(tx, max_grad_norm), schedule)
