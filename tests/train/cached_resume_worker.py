"""Subprocess body for the cached resume test: train a tiny decoder on a cached flan-mini task,
optionally SIGKILL itself after step `kill_at`, save final params and the data position.
`workers`: data_options.cache_workers (the batches must not depend on it)."""
import os
import signal
import sys

import gin
import jax
import numpy as np

from flan_jax.models.decoder import DecoderConfig
from flan_jax.train.train import train

TINY = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32,
                     num_layers=1)
TASK = "flan_mini.mini_add:zs_noopt"


def run(model_dir, num_steps, cache_dir, kill_at=None, workers=0):
    gin.bind_parameter("data_options.cache_dir", cache_dir)
    gin.bind_parameter("data_options.cache_workers", workers)
    gin.bind_parameter("data_options.cache_block_size", 16)

    def hook(params, step):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    return train(model=TINY, mixture=TASK, feature_lengths={"inputs": 24, "targets": 8}, batch_size=8,
                 num_steps=num_steps, model_dir=model_dir, checkpoint_every=3, eval_hooks=[hook],
                 eval_every=1, seed=1)


if __name__ == "__main__":
    model_dir, num_steps, kill_at, cache_dir, out = sys.argv[1:6]
    workers = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    r = run(model_dir, int(num_steps), cache_dir, int(kill_at) if int(kill_at) > 0 else None, workers)
    flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(r.state.params)}
    np.savez(out, **flat)
