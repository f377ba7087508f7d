"""Log-likelihood of target tokens: the quantity rank classification compares across options.

Works for every model following the model contract (`FEATURE_FORMAT`, `apply` -> float32 logits
[B, L, V] over the decoder positions), because the targets and their weights live in the same
fields for all three formats: decoder_target_tokens and decoder_loss_weights.

Worked example (decoder format, vocab 3, one unpacked row):
    decoder_target_tokens = [[2, 1, 0]]           # inputs token 2 (weight 0), target 1, pad
    decoder_loss_weights  = [[0, 1, 0]]
    log_softmax(logits)   = [[[.., .., -0.4], [-2.0, -0.3, -1.9], [..]]]
    sequence_log_likelihood -> [-0.3]             # only position 1 counts

Rows are scored whole: use unpacked batches (one example per row), as `convert_examples` makes.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.models import layers


def token_log_likelihoods(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """log p(target) per position: logits [B, L, V] f32, targets [B, L] int -> [B, L] f32."""
    logits = logits.astype(jnp.float32)
    # log_softmax at the target only: logit[target] - logsumexp(logits), no [B, L, V] output.
    target_logit = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return target_logit - jax.nn.logsumexp(logits, axis=-1)


def target_logits(model: Any, params: Any, batch: Mapping[str, jax.Array], max_targets: int | None = None
                  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(logits [B, C, V], targets [B, C], weights [B, C]) at the weighted positions of each row.

    With `max_targets` (at least the number of weighted positions of any row) and a model that
    returns its hidden states, the head runs at C = max_targets positions per row: each row's
    weighted positions first, in order (`layers.loss_positions_first`), then unweighted filler.
    Otherwise C = L and the logits are the model's full output.

    Worked example (one row, max_targets 2): weights [[0, 0, 1, 1, 0]] -> positions [[2, 3]].
    """
    targets, weights = batch["decoder_target_tokens"], batch["decoder_loss_weights"]
    if max_targets is None or max_targets >= targets.shape[1] or not layers.returns_hidden(model):
        return model.apply({"params": params}, batch), targets, weights
    hidden, head = model.apply({"params": params}, batch, return_hidden=True)
    order = layers.loss_positions_first(weights > 0)[:, :max_targets]  # [B, C]
    return (head(layers.take_positions(hidden, order)), layers.take_positions(targets, order),
            layers.take_positions(weights, order))


def weighted_log_likelihood(logits: jax.Array, targets: jax.Array, weights: jax.Array
                            ) -> tuple[jax.Array, jax.Array]:
    """(sum of weighted target-token log-probabilities [B], weight sum [B]) from logits [B, C, V].

    Positions with weight 0 contribute exactly 0 even if their logits are not finite (all-padding
    rows attend to nothing). Runs inside the caller's jit, whose inputs may be sharded.
    """
    token = token_log_likelihoods(logits, targets)
    w = weights.astype(jnp.float32)
    return jnp.where(w > 0, token * w, 0.0).sum(-1), w.sum(-1)


_JITTED: dict[tuple[int, Hashable], tuple[Any, Any]] = {}


def jitted_per_model(model: Any, key: Hashable, build: Callable[[], Any]) -> Any:
    """`jax.jit(build())`, built once per (model, key) and reused while that model lives.

    Keyed by the model's identity (the cached entry keeps the model, so an id is never reused by
    another model while its entry exists); `key` separates variants (e.g. head positions).
    """
    entry = _JITTED.get((id(model), key))
    if entry is None or entry[0] is not model:
        entry = (model, jax.jit(build()))
        _JITTED[(id(model), key)] = entry
    return entry[1]


@functools.lru_cache(maxsize=16)
def _scorer(model: Any) -> Any:
    def score(params: Any, batch: Mapping[str, jax.Array]) -> jax.Array:
        logits = model.apply({"params": params}, batch)
        per_token = token_log_likelihoods(logits, batch["decoder_target_tokens"])
        weights = batch["decoder_loss_weights"].astype(jnp.float32)
        return jnp.sum(per_token * weights, axis=-1)

    return jax.jit(score)


def sequence_log_likelihood(model: Any, params: Any, batch: Mapping[str, Any]) -> jax.Array:
    """Sum over positions of log p(target token) * loss weight -> [B] float32.

    `model` is a flax module with FEATURE_FORMAT; `batch` holds that format's fields (extra
    fields are ignored by the model). Jitted once per model (modules are hashable).
    """
    for field in ("decoder_target_tokens", "decoder_loss_weights"):
        if field not in batch:
            raise KeyError(f"sequence_log_likelihood: batch has no {field!r} (format {model.FEATURE_FORMAT})")
    arrays = {k: jnp.asarray(np.asarray(v)) for k, v in batch.items()}
    return _scorer(model)(params, arrays)
