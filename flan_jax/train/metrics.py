"""Throughput and model-FLOPs utilisation, and where the metrics go (TensorBoard, log lines).

Model FLOPs per step (PaLM appendix B): 6 x non-embedding params x tokens (forward + backward),
plus attention 12 x layers x d_model x T^2 per sequence (enc-dec: encoder self-attention over S,
decoder self-attention over T and cross-attention S x T). Encoder parameters see the encoder
tokens, all others the decoder tokens; the input embedding table is excluded (a gather, not a
matmul), an untied output head is included. Padding counts: these are the FLOPs the hardware runs.

MFU = model FLOPs/s / peak. The peak is MEASURED at start-up: the best of a few jitted float32
[n, n] x [n, n] matmuls on the first device (2 n^3 FLOPs each). On CPU all (fake) devices share
the host's cores, so the host peak is the peak; on accelerators it is multiplied by the device
count. A measured peak keeps the ratio honest on any machine (PERFORMANCE.md's 2-core CPU reaches
60-70 GFLOP/s in float32).
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.errors import FlanJaxError

log = logging.getLogger("flan_jax.train")
EMBEDDING_SUBTREES = ("embed", "token_embedder")


def measure_matmul_peak(n: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of the fastest of `repeats` float32 n x n matmuls on the first device."""
    device = jax.devices()[0]
    a = jax.device_put(jnp.ones((n, n), jnp.float32), device)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    per_device = 2 * n**3 / best
    return per_device if device.platform == "cpu" else per_device * jax.device_count()


def _count(tree: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def model_flops_per_step(params: Any, config: Any, batch_shapes: Mapping[str, tuple[int, ...]]) -> float:
    """Training FLOPs of one step (see module docstring); `params` may be abstract."""
    dec_b, dec_t = batch_shapes["decoder_input_tokens"]
    # input embedding tables: Decoder's `embed`, T5's `token_embedder` (top-level subtrees)
    embedding = sum(_count(params.get(name, {})) for name in EMBEDDING_SUBTREES)
    encoder = _count(params.get("encoder", {}))
    decoder_side = _count(params) - encoder - embedding
    d = int(getattr(config, "emb_dim", 0) or 0)
    flops = 6.0 * decoder_side * dec_b * dec_t
    if "encoder_input_tokens" in batch_shapes:
        _, enc_s = batch_shapes["encoder_input_tokens"]
        flops += 6.0 * encoder * dec_b * enc_s
        le, ld = getattr(config, "num_encoder_layers", 0), getattr(config, "num_decoder_layers", 0)
        flops += 12.0 * d * dec_b * (le * enc_s**2 + ld * dec_t**2 + ld * enc_s * dec_t)
    else:
        flops += 12.0 * getattr(config, "num_layers", 0) * d * dec_b * dec_t**2
    return flops


def _summary_writer_class() -> type:
    """tensorboardX's SummaryWriter, imported with torch hidden: tensorboardX imports torch when
    it can (3.5 s and ~1 GB on this machine) only to accept torch tensors; we log floats."""
    if "torch" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None  # type: ignore[assignment]  (makes `import torch` raise ImportError)
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


class MetricsWriter:
    """TensorBoard event files (tensorboardX) under `logdir` plus a log line every call."""

    def __init__(self, logdir: str | None) -> None:
        self._tb = None
        self.logdir = logdir
        if logdir:
            self._tb = _summary_writer_class()(logdir)

    def write(self, step: int, scalars: Mapping[str, float], prefix: str = "train") -> None:
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(f"{prefix}/{key}", float(value), step)
        line = " ".join(f"{k}={float(v):.4g}" for k, v in scalars.items())
        log.info("%s step %d: %s", prefix, step, line)

    def close(self) -> None:
        """Flush and close; an OS error (no space, read-only) -> FlanJaxError naming `logdir`."""
        if self._tb is not None:
            tb, self._tb = self._tb, None
            try:
                tb.close()
            except OSError as e:
                raise FlanJaxError(f"TensorBoard events in {self.logdir} could not be written: "
                                   f"{e.strerror or e}") from None
