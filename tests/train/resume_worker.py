"""Subprocess body for the resume test: train a tiny decoder, optionally SIGKILL itself right
after step `kill_at` (after that step's checkpoint save was started), save final params."""
import os
import signal
import sys

import jax
import numpy as np

from flan_jax.models.decoder import DecoderConfig
from flan_jax.train.train import train

TINY = DecoderConfig(vocab_size=64, emb_dim=32, num_heads=2, num_kv_heads=2, head_dim=16,
                     mlp_dim=64, num_layers=2)
ARGS = dict(model=TINY, mixture="synthetic", feature_lengths={"inputs": 8, "targets": 8}, batch_size=8,
            num_microbatches=2, mesh_shape=(2, 2, 2), checkpoint_every=5, keep_checkpoints=2, seed=3)


def flat(tree):
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(tree)}


def run(model_dir, num_steps, kill_at=None):
    def hook(params, step):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    result = train(model_dir=model_dir, num_steps=num_steps, eval_hooks=[hook], eval_every=1, **ARGS)
    return result


if __name__ == "__main__":
    model_dir, num_steps, kill_at, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    r = run(model_dir, num_steps, kill_at if kill_at > 0 else None)
    np.savez(out, **flat({"params": r.state.params, "opt_state": r.state.opt_state}), consumed=r.batches_consumed)
