"""Saving a Gemma-3-270M-sized train state: uncompressed (the trainer's `Checkpointer`) against
orbax's default zstd (`StandardCheckpointHandler`, what checkpoints used before 2026-12-08).

    .venv/bin/python bench/checkpoint_write.py [--rounds 3]

The state: float32 parameters of 268M values (a [262144, 640] table + 18 x 5.57M) and AdamW's
two moments, 3.0 GiB, random normal values x 0.02 (trained weights compress about as little).
Each round saves it once each way (zstd first in odd rounds, second in even ones: a process's
first save pays for growing its heap) into a fresh folder, and waits for the write;
prints the seconds and the bytes on disk. Run under the CLI's malloc settings to see what a
tuning's final save costs (host_malloc.TUNED_MALLOC_ENV; the bench re-executes itself with them).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from flan_jax import host_malloc

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    host_malloc.reexec_with_tuned_malloc()
    import jax
    import jax.numpy as jnp
    import numpy as np
    import orbax.checkpoint as ocp

    from flan_jax.train.checkpoint import Checkpointer
    from flan_jax.train.state import TrainState

    rng = np.random.default_rng(0)

    def values(shape):
        return jnp.asarray((rng.standard_normal(shape) * 0.02).astype(np.float32))

    params = {"embed": values((262144, 640)), "layers": values((18, 5_570_000))}
    moments = (jax.tree.map(lambda x: x * 0.1, params), jax.tree.map(lambda x: x * x, params))
    state = TrainState(step=jnp.int32(60), params=params, opt_state=moments)
    gib = sum(x.nbytes for x in jax.tree.leaves(state)) / 2**30
    root = tempfile.mkdtemp(prefix="checkpoint_write_")

    def zstd(folder):
        manager = ocp.CheckpointManager(folder, options=ocp.CheckpointManagerOptions(create=True),
                                        item_handlers={"state": ocp.StandardCheckpointHandler()})
        tree = {"step": state.step, "params": state.params, "opt_state": state.opt_state}
        manager.save(60, args=ocp.args.Composite(state=ocp.args.StandardSave(tree)))
        manager.wait_until_finished()
        manager.close()

    def plain(folder):
        checkpointer = Checkpointer(folder)
        checkpointer.save(state, 60, force=True)
        checkpointer.close()

    print(f"state {gib:.2f} GiB; malloc env: {host_malloc.TUNED_MALLOC_ENV if os.environ.get('MALLOC_ARENA_MAX') else 'glibc defaults'}")
    try:
        for r in range(args.rounds):
            ways = (("zstd", zstd), ("uncompressed", plain))
            for name, save in (ways if r % 2 == 0 else ways[::-1]):  # each goes first once
                folder = os.path.join(root, f"{name}_{r}")
                start = time.perf_counter()
                save(folder)
                seconds = time.perf_counter() - start
                size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
                print(f"round {r + 1} {name}: {seconds:.1f} s, {size / 2**30:.2f} GiB on disk", flush=True)
                shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
