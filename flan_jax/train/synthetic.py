"""Synthetic batches keyed by batch index, for smoke runs, benchmarks and resume tests.

Batch n is a pure function of (seed, n, shard), so `start_batch` is an O(1) skip. Each row is
one segment: inputs of random tokens, then targets that copy the inputs (a learnable task).

Example (decoder format, lengths {"inputs": 2, "targets": 2}, one row; tokens drawn 7, 9):
    decoder_target_tokens [[7, 9, 7, 9]]   decoder_input_tokens [[0, 7, 9, 7]]
    decoder_loss_weights  [[0, 0, 1, 1]]   decoder_causal_attention [[1, 1, 0, 0]]
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from flan_jax.errors import FlanJaxError

FORMATS = ("decoder", "prefix_lm", "enc_dec")


def synthetic_batch(format_name: str, lengths: Mapping[str, int], batch_size: int, vocab_size: int,
                    index: int, *, seed: int = 0, shard_index: int = 0) -> dict[str, np.ndarray]:
    if format_name not in FORMATS:
        raise FlanJaxError(f"synthetic data: unknown format {format_name!r}; expected one of {FORMATS}")
    li, lt = int(lengths["inputs"]), int(lengths["targets"])
    if li < 1 or lt < 1 or vocab_size < 3:
        raise FlanJaxError(f"synthetic data: lengths {dict(lengths)} / vocab {vocab_size} too small")
    rng = np.random.default_rng([seed, shard_index, index])
    inputs = rng.integers(2, vocab_size, size=(batch_size, li), dtype=np.int32)
    targets = np.resize(inputs, (batch_size, lt)) if lt <= li else np.tile(inputs, (1, lt // li + 1))[:, :lt]
    targets = targets.astype(np.int32)
    ones = lambda n: np.ones((batch_size, n), np.int32)  # noqa: E731
    if format_name == "enc_dec":
        dec_in = np.concatenate([np.zeros((batch_size, 1), np.int32), targets[:, :-1]], axis=1)
        return {"encoder_input_tokens": inputs, "encoder_segment_ids": ones(li),
                "encoder_positions": np.broadcast_to(np.arange(li, dtype=np.int32), (batch_size, li)).copy(),
                "decoder_input_tokens": dec_in, "decoder_target_tokens": targets,
                "decoder_loss_weights": ones(lt), "decoder_segment_ids": ones(lt),
                "decoder_positions": np.broadcast_to(np.arange(lt, dtype=np.int32), (batch_size, lt)).copy()}
    full = np.concatenate([inputs, targets], axis=1)
    length = li + lt
    out = {"decoder_target_tokens": full,
           "decoder_input_tokens": np.concatenate([np.zeros((batch_size, 1), np.int32), full[:, :-1]], axis=1),
           "decoder_loss_weights": np.concatenate([np.zeros((batch_size, li), np.int32), ones(lt)], axis=1),
           "decoder_segment_ids": ones(length),
           "decoder_positions": np.broadcast_to(np.arange(length, dtype=np.int32), (batch_size, length)).copy()}
    if format_name == "prefix_lm":
        out["decoder_causal_attention"] = np.concatenate([ones(li), np.zeros((batch_size, lt), np.int32)], axis=1)
    return out


def synthetic_batches(format_name: str, lengths: Mapping[str, int], batch_size: int, vocab_size: int, *,
                      seed: int = 0, start_batch: int = 0, shard_index: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Endless batches start_batch, start_batch + 1, ..."""
    index = start_batch
    while True:
        yield synthetic_batch(format_name, lengths, batch_size, vocab_size, index, seed=seed, shard_index=shard_index)
        index += 1
