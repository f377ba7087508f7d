"""A tiny causal LM following the model contract (batch dict in, float32 logits out, logical
axis names on every parameter), for trainer tests that must not depend on models/."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

VOCAB, EMBED, HIDDEN = 32, 16, 32


class TinyLM(nn.Module):
    FEATURE_FORMAT = "decoder"
    hidden: int = HIDDEN

    @nn.compact
    def __call__(self, batch):
        tokens = jnp.asarray(batch["decoder_input_tokens"])
        init = nn.initializers.normal(0.2)
        emb = self.param("embedding", nn.with_logical_partitioning(init, ("vocab", "embed")), (VOCAB, EMBED))
        x = emb[tokens]  # [B, L, D]
        # causal mixing: running mean over previous positions (so positions interact)
        x = jnp.cumsum(x, axis=1) / jnp.arange(1, x.shape[1] + 1)[None, :, None]
        w1 = self.param("w1", nn.with_logical_partitioning(init, ("embed", "mlp")), (EMBED, self.hidden))
        w2 = self.param("w2", nn.with_logical_partitioning(init, ("mlp", "embed")), (self.hidden, EMBED))
        x = x + jnp.tanh(x.astype(w1.dtype) @ w1) @ w2
        head = self.param("head", nn.with_logical_partitioning(init, ("embed", "vocab")), (EMBED, VOCAB))
        bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("vocab",)), (VOCAB,))
        return (x @ head + bias).astype(jnp.float32)


def random_batch(seed: int, batch_size: int = 8, length: int = 8) -> dict[str, np.ndarray]:
    """Decoder-format batch with ragged padding (so loss weights matter)."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(2, VOCAB, size=(batch_size, length)).astype(np.int32)
    lengths = rng.integers(2, length + 1, size=batch_size)
    mask = np.arange(length)[None, :] < lengths[:, None]
    targets = np.where(mask, targets, 0).astype(np.int32)
    inputs = np.concatenate([np.zeros((batch_size, 1), np.int32), targets[:, :-1]], axis=1)
    return {"decoder_input_tokens": inputs, "decoder_target_tokens": targets,
            "decoder_loss_weights": mask.astype(np.float32)}
