"""train() end to end on tiny models: both families, NaN stop, pretrained start, bad input."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.models.decoder import DecoderConfig
from flan_jax.models.t5 import T5Config
from flan_jax.train.optim import Optimizer, adafactor, lr_schedule
from flan_jax.train.train import TrainingDivergedError, train
from train_tiny_model import TinyLM

T5_TINY = T5Config(vocab_size=64, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                   num_encoder_layers=1, num_decoder_layers=1)
DEC_TINY = DecoderConfig(vocab_size=64, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                         mlp_dim=32, num_layers=1)
LENGTHS = {"inputs": 6, "targets": 4}


@pytest.mark.slow
def test_t5_trains_logs_and_checkpoints(tmp_path):
    opt = adafactor(learning_rate=lr_schedule("linear", 1e-3, warmup_steps=2, decay_steps=10))
    r = train(model=T5_TINY, mixture="synthetic", feature_lengths=LENGTHS, batch_size=8, num_steps=3,
              optimizer=opt, mesh_shape=(2, 2, 2), model_dir=str(tmp_path), checkpoint_every=2, log_every=1)
    assert r.step == 3 and r.batches_consumed == 3 and len(r.losses) == 3
    assert all(np.isfinite(r.losses))
    # lr of the third step (state.step 2) is the end of the warmup: the peak
    assert r.last_metrics["learning_rate"] == pytest.approx(1e-3)
    assert r.last_metrics["target_tokens"] == 8 * LENGTHS["targets"]
    assert 0 < r.last_metrics["mfu"] < 1
    # tokens/s counts every encoder + decoder position: 8 x (6 + 4) per step
    ratio = r.last_metrics["tokens_per_s"] / r.last_metrics["steps_per_s"]
    assert ratio == pytest.approx(8 * (LENGTHS["inputs"] + LENGTHS["targets"]))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "3"]
    assert any(f.startswith("events") for f in os.listdir(tmp_path / "tensorboard"))


def nan_at(count_to_break):
    """An optimizer whose update of step `count_to_break` (0-based) is NaN."""
    def init(params):
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        bad = state.count == count_to_break
        updates = jax.tree.map(lambda u: jnp.where(bad, jnp.nan, -0.01 * u), updates)
        return updates, optax.ScaleByScheduleState(count=state.count + 1)

    return Optimizer(optax.GradientTransformation(init, update), optax.constant_schedule(0.01))


@pytest.mark.slow
def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDivergedError, match="update_norm is nan at step 3.*step 2"):
        train(model=TinyLM(), mixture="synthetic", feature_lengths=LENGTHS, batch_size=8, num_steps=6,
              optimizer=nan_at(2), model_dir=str(tmp_path), checkpoint_every=1, log_every=100)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]


@pytest.mark.slow
def test_starts_from_pretrained_params(tmp_path):
    from flan_jax.models import params_io
    from flan_jax.models.decoder import Decoder, dummy_batch

    params = Decoder(DEC_TINY).init(jax.random.PRNGKey(7), dummy_batch())["params"]
    params = jax.device_get(params)
    from flax.linen import meta

    params = meta.unbox(params)
    params_io.save_checkpoint(tmp_path / "pre", DEC_TINY, params)
    r = train(model=None, pretrained=str(tmp_path / "pre"), mixture="synthetic", feature_lengths=LENGTHS,
              batch_size=8, num_steps=0, model_dir=str(tmp_path / "run"))
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(r.state.params)):
        np.testing.assert_array_equal(a, np.asarray(b), err_msg=jax.tree_util.keystr(path))
    # the same checkpoint under a model of another shape is refused
    other = DecoderConfig(**{**DEC_TINY.__dict__, "mlp_dim": 48})
    with pytest.raises(FlanJaxError, match="pretrained parameters.*shape"):
        train(model=other, pretrained=str(tmp_path / "pre"), mixture="synthetic", feature_lengths=LENGTHS,
              batch_size=8, num_steps=0, model_dir=str(tmp_path / "run2"))


@pytest.mark.parametrize("kwargs,msg", [
    ({"batch_size": 8, "num_microbatches": 3}, "not divisible by num_microbatches"),
    ({"batch_size": 8, "mesh_shape": (3, -1, 1)}, "does not divide the 8 devices"),
    ({"batch_size": 2, "mesh_shape": (2, 2, 2)}, "batch shards"),
    ({"batch_size": 8, "mixture": None}, "no mixture"),
    ({"batch_size": 8, "model_dir": None}, "no model_dir"),
])
def test_bad_input(tmp_path, kwargs, msg):
    args = dict(model=TinyLM(), mixture="synthetic", feature_lengths=LENGTHS, model_dir=str(tmp_path),
                num_steps=1)
    with pytest.raises(FlanJaxError, match=msg):
        train(**{**args, **kwargs})
    assert not os.path.exists(tmp_path / "checkpoints")


@pytest.mark.slow
def test_data_pipeline_counts_reach_tensorboard_and_log(tmp_path, caplog):
    """Examples dropped or truncated by the pipeline (and zero-loss ones) are reported, not
    silently skipped: the trainer writes the pipeline's counts under "data/"."""
    import logging

    cfg = DecoderConfig(**{**DEC_TINY.__dict__, "vocab_size": 1024})
    with caplog.at_level(logging.INFO, logger="flan_jax.train"):
        train(model=cfg, mixture="flan_mini.mini_add:zs_noopt", feature_lengths={"inputs": 4, "targets": 4},
              batch_size=8, num_steps=2, log_every=1, mesh_shape=(-1, 1, 1), model_dir=str(tmp_path))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data step 2")]
    assert lines, "no data counts logged"
    counts = dict(kv.split("=") for kv in lines[0].split(": ", 1)[1].split())
    # every flan-mini input is longer than 4 tokens, so every example read was truncated
    assert float(counts["examples"]) > 0
    assert float(counts["truncated"]) == float(counts["examples"])
    assert "zero_loss" in counts


def test_resume_with_the_real_pipeline_equals_one_run(tmp_path):
    """Stop at a checkpoint, call train() again: it restores the data position, so the final
    parameters equal an uninterrupted run's bit for bit (real seqio task, packed rows)."""
    cfg = DecoderConfig(**{**DEC_TINY.__dict__, "vocab_size": 1024})
    args = dict(model=cfg, mixture="flan_mini.mini_add:zs_noopt", feature_lengths={"inputs": 24, "targets": 8},
                batch_size=4, checkpoint_every=2, seed=5, mesh_shape=(2, 2, 2))
    whole = train(model_dir=str(tmp_path / "whole"), num_steps=4, **args)
    first = train(model_dir=str(tmp_path / "split"), num_steps=2, **args)
    assert first.batches_consumed == 2
    second = train(model_dir=str(tmp_path / "split"), num_steps=4, **args)
    assert second.batches_consumed == 4 and len(second.losses) == 2
    assert second.losses == whole.losses[2:]
    for a, b in zip(jax.tree.leaves(whole.state.params), jax.tree.leaves(second.state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FlanJaxError, match="vocab_size >= 1024"):  # tokens would not fit the table
        train(model_dir=str(tmp_path / "small"), num_steps=1, **{**args, "model": DEC_TINY})


def test_cpu_runs_one_step_at_a_time(tmp_path, monkeypatch):
    """On CPU step n's metrics are fetched (the step has finished) before step n+1 is dispatched:
    two steps in flight would hold two sets of host temporaries (train.py, `on_cpu`)."""
    from flan_jax.train import distributed

    events = []
    global_batch, device_get = distributed.global_batch, jax.device_get

    def recording_batch(local, sharding):  # made right before each step is dispatched
        events.append("dispatch")
        return global_batch(local, sharding)

    def recording_get(x):
        if isinstance(x, dict) and "loss" in x:  # a step's metrics
            events.append("fetch")
        return device_get(x)

    monkeypatch.setattr(distributed, "global_batch", recording_batch)
    monkeypatch.setattr(jax, "device_get", recording_get)
    r = train(model=TinyLM(), mixture="synthetic", feature_lengths=LENGTHS, batch_size=8, num_steps=4,
              model_dir=str(tmp_path), checkpoint_every=100, log_every=100)
    assert r.step == 4
    assert events == ["dispatch", "fetch"] * 4


def test_first_batch_read_in_background_and_step_compiled_ahead(tmp_path, monkeypatch, caplog):
    """The step is compiled ahead for the format's fields (the first batch is read in the
    calling thread on CPU, train_data.FirstBatch); a first batch whose fields differ (an int64
    field here) is trained on by the jitted step, with the same losses."""
    import logging
    import threading

    import flan_jax.train.train as train_module

    made_in, real = [], train_module.synthetic_batches

    def recording(*args, **kwargs):
        made_in.append(threading.current_thread().name)
        return real(*args, **kwargs)

    def with_int64(*args, **kwargs):
        for b in real(*args, **kwargs):
            yield {**b, "decoder_positions": b["decoder_positions"].astype(np.int64)}

    args = dict(model=TinyLM(), mixture="synthetic", feature_lengths=LENGTHS, batch_size=8, num_steps=3,
                checkpoint_every=100, log_every=100)
    monkeypatch.setattr(train_module, "synthetic_batches", recording)
    with caplog.at_level(logging.INFO, logger="flan_jax.train"):
        ahead = train(model_dir=str(tmp_path / "ahead"), **args)
    assert made_in == [threading.current_thread().name]  # CPU: not in the background thread
    assert "the step compiles for them" not in caplog.text  # the step compiled ahead was used
    monkeypatch.setattr(train_module, "synthetic_batches", with_int64)
    with caplog.at_level(logging.INFO, logger="flan_jax.train"):
        other = train(model_dir=str(tmp_path / "other"), **args)
    assert "the step compiles for them" in caplog.text
    assert other.losses == ahead.losses and len(ahead.losses) == 3
