"""Two processes on localhost (2 CPU devices each, gloo collectives) train like one process.

Each process reads only its own rows of the global batch (`process_rows`), assembles the global
batch with `global_batch`, and runs the trainer's state/step code on a mesh spanning both
processes (data=2 across them, fsdp=2 inside each). The reference is ONE process with 4 devices
and the same mesh shape fed the whole batch. After 3 AdamW steps (2 micro-batches each) the
gathered parameters and the losses must agree.

This file is also the worker: `python test_multihost.py <num_processes> <process_id> <port> <out>`.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

STEPS, BATCH, VOCAB = 3, 8, 64
LENGTHS = {"inputs": 8, "targets": 8}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # devices set by the worker
    env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    return env


def _run(num_processes: int, out_dir) -> list[str]:
    port = _free_port()
    outs = [str(out_dir / f"{num_processes}proc_{i}.npz") for i in range(num_processes)]
    procs = [subprocess.Popen([sys.executable, __file__, str(num_processes), str(i), str(port), outs[i]],
                              env=_worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(num_processes)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=600)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, text in zip(procs, logs):
        assert p.returncode == 0, text[-3000:]
    return outs


@pytest.mark.slow
def test_two_processes_reach_the_same_parameters_as_one(tmp_path):
    one = np.load(_run(1, tmp_path)[0])
    two = [np.load(path) for path in _run(2, tmp_path)]
    assert set(one.files) == set(two[0].files) == set(two[1].files)
    np.testing.assert_allclose(two[0]["losses"], one["losses"], rtol=1e-5)
    assert one["losses"][-1] < one["losses"][0]  # it trained
    params = [name for name in one.files if name.startswith("p/")]
    assert len(params) > 5, one.files
    for name in params:
        assert not np.allclose(one[name], one["init" + name[1:]]), name  # every tensor moved
        for host in two:  # both hosts see the same global parameters
            np.testing.assert_allclose(host[name], one[name], rtol=2e-5, atol=2e-6, err_msg=name)


@pytest.mark.slow
def test_one_process_is_a_no_op_and_owns_every_row():
    import jax

    from flan_jax.train import distributed
    from flan_jax.train.mesh import batch_sharding, make_mesh

    info = distributed.initialize()
    assert (info.process_index, info.process_count, info.global_devices) == (0, 1, jax.device_count())
    shard = distributed.shard_info()
    assert (shard.index, shard.num_shards) == (0, 1)
    sharding = batch_sharding(make_mesh((2, 2, 2)))
    assert distributed.process_rows(sharding, 8) == slice(0, 8)
    local = {"x": np.arange(8 * 3, dtype=np.int32).reshape(8, 3)}
    out = distributed.global_batch(local, sharding)["x"]
    assert out.sharding == sharding
    np.testing.assert_array_equal(np.asarray(out), local["x"])
    # each of the 4 batch shards (data x fsdp) holds 2 consecutive rows
    assert sorted(s.index[0].start for s in out.addressable_shards) == [0, 0, 2, 2, 4, 4, 6, 6]


@pytest.mark.parametrize("kwargs, env, match", [
    ({"num_processes": 2, "process_id": 0}, {}, "coordinator_address not set .*JAX_COORDINATOR_ADDRESS"),
    ({"coordinator_address": "localhost:1"}, {}, "num_processes, process_id not set"),
    ({"coordinator_address": "localhost:1", "num_processes": 2, "process_id": 2}, {}, r"process_id 2 .*\[0, 2\)"),
    ({}, {"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two'"),
])
def test_incomplete_multi_host_settings_are_named(monkeypatch, kwargs, env, match):
    from flan_jax.errors import FlanJaxError
    from flan_jax.train import distributed

    for name in (distributed.ENV_COORDINATOR, distributed.ENV_NUM_PROCESSES, distributed.ENV_PROCESS_ID):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(FlanJaxError, match=match):
        distributed.initialize(**kwargs)


def test_batch_must_split_over_hosts(monkeypatch):
    import jax

    from flan_jax.errors import FlanJaxError
    from flan_jax.train import distributed

    monkeypatch.setattr(jax, "process_count", lambda: 3)
    assert distributed.host_batch_size(12) == 4
    with pytest.raises(FlanJaxError, match="batch_size 8 is not divisible by the 3 hosts"):
        distributed.host_batch_size(8)


def _flat(tree, prefix: str) -> dict[str, np.ndarray]:
    import jax

    return {prefix + jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(tree)}


def worker(num_processes: int, process_id: int, port: int, out: str) -> None:
    import jax

    jax.config.update("jax_num_cpu_devices", 4 // num_processes)
    from jax.experimental import multihost_utils

    from flan_jax.models.decoder import Decoder, DecoderConfig
    from flan_jax.train import distributed
    from flan_jax.train.mesh import batch_sharding, make_mesh
    from flan_jax.train.optim import adamw
    from flan_jax.train.state import create_state, state_shardings
    from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn
    from flan_jax.train.synthetic import synthetic_batch

    info = distributed.initialize(f"localhost:{port}" if num_processes > 1 else None, num_processes, process_id)
    assert (info.process_count, info.global_devices) == (num_processes, 4), info

    module = Decoder(DecoderConfig(vocab_size=VOCAB, emb_dim=32, num_heads=2, num_kv_heads=2, head_dim=16,
                                   mlp_dim=64, num_layers=2))
    optimizer = adamw(1e-2, weight_decay=0.0)
    mesh = make_mesh((2, 2, 1))
    example = synthetic_batch("decoder", LENGTHS, 1, VOCAB, 0)
    abstract, shardings = state_shardings(module, optimizer.tx, example, mesh)
    state = create_state(module, optimizer.tx, example, abstract, shardings, seed=0)
    init = multihost_utils.process_allgather(state.params, tiled=True)
    step = jit_train_step(make_train_step(model_apply_fn(module), optimizer, num_microbatches=2, mesh=mesh),
                          mesh, shardings)
    rows = distributed.process_rows(batch_sharding(mesh), BATCH)
    assert rows.stop - rows.start == distributed.host_batch_size(BATCH)
    losses = []
    for i in range(STEPS):
        full = synthetic_batch("decoder", LENGTHS, BATCH, VOCAB, i, seed=7)  # the global batch
        local = {k: v[rows] for k, v in full.items()}  # this host reads only its rows
        state, metrics = step(state, distributed.global_batch(local, batch_sharding(mesh)))
        losses.append(float(metrics["loss"]))
    params = multihost_utils.process_allgather(state.params, tiled=True)
    np.savez(out, losses=np.asarray(losses), **_flat(params, "p/"), **_flat(init, "init/"))


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
