"""train() on a cached mixture in two real processes (2 CPU devices each, gloo collectives): both
are SIGKILLed after step 7 and resumed with another packing worker count; every host's batches
before and after the kill are exactly its shard of the cached stream (host h: global blocks h,
h + 2, ...), and the checkpoint stores both hosts' positions.

The reference is independent of train(): `CachedBatches` over each host's shard, read directly.
This file is also the worker: `python test_cached_multihost_training.py <pid> <port> <model_dir>
<cache_dir> <kill_at> <workers> <log>`; it appends the SHA-256 of every batch it reads to <log>.
"""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

TASK = "flan_mini.mini_add:zs_noopt"
LENGTHS = {"inputs": 24, "targets": 8}
BATCH, STEPS, KILL_AT, BLOCK, HOSTS = 8, 9, 7, 16, 2


def _digest(batch) -> str:
    h = hashlib.sha256()
    for k in sorted(batch):
        h.update(k.encode())
        h.update(np.ascontiguousarray(batch[k]).tobytes())
    return h.hexdigest()


def _run(tmp_path, kill_at: int, workers: int, tag: str) -> list[list[str]]:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                                           env.get("PYTHONPATH", "")]))
    logs = [tmp_path / f"{tag}_{i}.log" for i in range(HOSTS)]
    procs = [subprocess.Popen([sys.executable, __file__, str(i), str(port), str(tmp_path / "run"),
                               str(tmp_path / "cache"), str(kill_at), str(workers), str(logs[i])],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(HOSTS)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=600)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, text in zip(procs, outs):
        assert p.returncode == (-9 if kill_at else 0), text[-3000:]
    return [log.read_text().split() if log.exists() else [] for log in logs]


@pytest.mark.slow
def test_two_hosts_resume_their_own_shards_exactly(tmp_path):
    from flan_jax.data.cache import writer as cache, cached_pipeline
    from flan_jax.data.tasks import catalogue
    from flan_jax.data.features import vocab
    from flan_jax.train.checkpoint import Checkpointer

    catalogue.register_flan_mini_tasks(vocab.load_vocabulary(vocab.default_vocabulary_path()), datasets=["mini_add"])
    cache.write_task(TASK, str(tmp_path / "cache"), max_examples=200)
    want, states = [], []
    for h in range(HOSTS):  # each host's shard, read without train()
        stream = cached_pipeline.stream_spec(str(tmp_path / "cache"), {TASK: 1.0}, "train", seed=1,
                                             shard_index=h, num_shards=HOSTS)
        it = cached_pipeline.CachedBatches(cached_pipeline.BlockSpec(stream, "decoder", tuple(LENGTHS.items()),
                                                                     block_size=BLOCK), BATCH // HOSTS)
        batches = []
        for _ in range(STEPS):
            batches.append(_digest(next(it)))
            states.append((h, len(batches), it.state()))
        want.append(batches)
    assert want[0] != want[1]

    killed = _run(tmp_path, KILL_AT, 0, "killed")
    for h in range(HOSTS):  # steps 1..7 read (and maybe the next batch, read ahead)
        assert killed[h] == want[h][:len(killed[h])] and len(killed[h]) >= KILL_AT, h
    step = Checkpointer(str(tmp_path / "run" / "checkpoints")).latest_step()
    assert step in (3, 6)
    done = _run(tmp_path, 0, 1, "resumed")  # another packing worker count
    for h in range(HOSTS):
        assert done[h] == want[h][step:], (h, step, len(done[h]))
    saved = Checkpointer(str(tmp_path / "run" / "checkpoints")).data_position(STEPS)["cache_state"]
    assert saved == {"num_hosts": HOSTS, "hosts": [s for h, n, s in states if n == STEPS]}


def worker(pid: int, port: int, model_dir: str, cache_dir: str, kill_at: int, workers: int, log: str) -> None:
    import signal

    import gin
    import jax

    jax.config.update("jax_num_cpu_devices", 2)
    from flan_jax.data.cache import cached_pipeline
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.train import distributed
    from flan_jax.train.train import train

    distributed.initialize(f"localhost:{port}", HOSTS, pid)
    read = cached_pipeline.CachedBatches.__next__

    def logged(self):
        batch = read(self)
        with open(log, "a") as f:
            f.write(_digest(batch) + "\n")
        return batch

    cached_pipeline.CachedBatches.__next__ = logged
    gin.bind_parameter("data_options.cache_dir", cache_dir)
    gin.bind_parameter("data_options.cache_workers", workers)
    gin.bind_parameter("data_options.cache_block_size", BLOCK)

    def hook(params, step):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    tiny = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32,
                         num_layers=1)
    train(model=tiny, mixture=TASK, feature_lengths=LENGTHS, batch_size=BATCH, num_steps=STEPS,
          model_dir=model_dir, checkpoint_every=3, eval_hooks=[hook], eval_every=1, seed=1)


if __name__ == "__main__":
    a = sys.argv[1:]
    worker(int(a[0]), int(a[1]), a[2], a[3], int(a[4]), int(a[5]), a[6])
