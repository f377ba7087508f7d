"""num_microbatches="auto": the choice follows the compiled step's memory against the budget,
and the chosen step computes what the 1-micro-batch step computes."""
import logging

import gin
import jax
import numpy as np
import optax
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.train import mesh as mesh_lib
from flan_jax.train import microbatch
from flan_jax.train.optim import Optimizer
from flan_jax.train.state import create_state, state_shardings
from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn
from flan_jax.train.train import train
from train_tiny_model import TinyLM, random_batch

GIB = 1024**3


def sgd():
    return Optimizer(optax.sgd(1.0), optax.constant_schedule(1.0))


def setup(hidden=256, length=128):
    # activations [8, 128, 256] f32 dominate the tiny parameters, so the peak falls with k
    model, mesh = TinyLM(hidden=hidden), mesh_lib.make_mesh((1, 1, 1), devices=jax.devices()[:1])
    batch = random_batch(3, batch_size=8, length=length)
    opt = sgd()
    abstract, shardings = state_shardings(model, opt.tx, batch, mesh)

    def build(k):
        return jit_train_step(make_train_step(model_apply_fn(model), opt, num_microbatches=k, mesh=mesh),
                              mesh, shardings)

    state_in = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
    return model, mesh, batch, opt, abstract, shardings, build, state_in


def test_candidates_worked_examples():
    assert microbatch.candidates(8) == [1, 2, 4, 8]
    assert microbatch.candidates(8, 2) == [1, 2, 4]
    assert microbatch.candidates(12, 4) == [1, 3]


@pytest.mark.slow
def test_choice_follows_the_budget_and_equals_one_microbatch():
    model, mesh, batch, opt, abstract, shardings, build, state_in = setup()
    # independent of `choose`: every k's peak straight from XLA's memory analysis
    peaks = {}
    for k in (1, 2, 4):
        m = build(k).jitted.lower(state_in, batch).compile().memory_analysis()
        peaks[k] = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes
    assert peaks[1] > peaks[2] > peaks[4]

    chosen = {}
    for budget, expect in ((peaks[1], 1), (peaks[1] - 1, 2), ((peaks[2] + peaks[4]) // 2, 4)):
        runner, choice = microbatch.auto_train_step(build, state_in, batch, mesh, 8, budget)
        assert choice.num_microbatches == expect and choice.peak_bytes == peaks[expect]
        assert [k for k, _ in choice.tried] == [1, 2, 4][:[1, 2, 4].index(expect) + 1]
        chosen[expect] = runner

    def one_step(step_fn):
        state = create_state(model, opt.tx, batch, abstract, shardings, seed=0)
        state, metrics = step_fn(state, {k: jax.numpy.asarray(v) for k, v in batch.items()})
        return jax.device_get(state.params), jax.device_get(metrics)

    ref_params, ref_metrics = one_step(build(1))  # the plain jitted 1-micro-batch step
    for k in (2, 4):
        params, metrics = one_step(chosen[k])
        for a, b in zip(jax.tree.leaves(ref_params), jax.tree.leaves(params)):  # SGD: equal grads
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        for key in ("loss", "target_tokens", "grad_norm"):
            np.testing.assert_allclose(ref_metrics[key], metrics[key], rtol=1e-5)


def test_no_count_fits_raises_one_line():
    calls = []

    class Fake:
        def __init__(self, peak):
            self.peak = peak

        def memory_analysis(self):
            return type("M", (), dict(argument_size_in_bytes=self.peak, output_size_in_bytes=0,
                                      alias_size_in_bytes=0, temp_size_in_bytes=0))()

    def compile_for(k):
        calls.append(k)
        return Fake(GIB * 8 // k)

    with pytest.raises(microbatch.MicrobatchBudgetError, match=r"smallest predicted step peak 2.00 GiB at 4"):
        microbatch.choose(compile_for, [1, 2, 4], GIB)
    assert calls == [1, 2, 4]
    calls.clear()
    assert microbatch.choose(compile_for, [1, 2, 4, 8], 3 * GIB).num_microbatches == 4
    assert calls == [1, 2, 4]  # stops at the first that fits


def test_budget_from_options_and_bad_values():
    assert microbatch.memory_budget_bytes(1.5) == int(1.5 * GIB)
    host = microbatch.memory_budget_bytes(None, 1.0)  # CPU: host memory / local devices
    assert 0 < host * jax.local_device_count() <= 1.01 * 2**50
    assert microbatch.memory_budget_bytes(None, 0.25) == pytest.approx(host / 4, rel=1e-6)
    with pytest.raises(FlanJaxError, match="memory_budget_gib must be > 0"):
        microbatch.memory_budget_bytes(0)
    with pytest.raises(FlanJaxError, match=r"memory_fraction must be in \(0, 1\]"):
        microbatch.memory_budget_bytes(None, 1.5)


@pytest.mark.parametrize("value", ["8", 2.0, True])
def test_train_rejects_a_bad_num_microbatches(value):
    with pytest.raises(FlanJaxError, match="num_microbatches must be an int >= 1 or 'auto'"):
        train(model=TinyLM(), mixture="synthetic", batch_size=8, num_microbatches=value, dry_run=True)


@pytest.mark.slow
def test_train_auto_logs_the_choice_and_trains(tmp_path, caplog, monkeypatch):
    lengths = {"inputs": 64, "targets": 64}
    peaks = []
    real_peak = microbatch.peak_bytes
    monkeypatch.setattr(microbatch, "peak_bytes", lambda c: peaks.append(real_peak(c)) or peaks[-1])
    kwargs = dict(model=TinyLM(hidden=256), mixture="synthetic", feature_lengths=lengths, batch_size=8,
                  num_microbatches="auto", mesh_shape=(2, 1, 4))  # 2 batch shards
    gin.clear_config()
    try:
        gin.bind_parameter("microbatch_options.memory_budget_gib", 1e-6)  # ~1 kB: nothing fits
        with pytest.raises(microbatch.MicrobatchBudgetError, match="no micro-batch count fits"):
            train(num_steps=1, model_dir=str(tmp_path / "a"), **kwargs)
        assert len(peaks) == 3 and peaks[0] > peaks[1]  # k = 1, 2, 4 all compiled
        gin.bind_parameter("microbatch_options.memory_budget_gib", (peaks[0] + peaks[1]) / 2 / GIB)
        with caplog.at_level(logging.INFO, logger="flan_jax.train"):
            r = train(num_steps=2, model_dir=str(tmp_path / "b"), **kwargs)
    finally:
        gin.clear_config()
    assert r.step == 2 and all(np.isfinite(r.losses))
    assert any("num_microbatches=auto: chose 2 (predicted step peak" in rec.message for rec in caplog.records)
