"""`train()`: the whole training run, top to bottom: mesh, data, state, step, restore, loop.

Everything is importable (a notebook calls `train(...)` directly); the CLI (`flan-jax train`,
train_cmd.py) only parses gin files and calls it. Resuming is automatic: when `model_dir` holds
a checkpoint, the run continues from its step and data position.

Files under `model_dir`: `checkpoints/<step>/` (orbax; params, optimizer state, step, batches
consumed) and `tensorboard/` (event files: loss, accuracy, tokens/s, MFU, eval results).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import gin
import jax
import numpy as np
import tqdm

from flan_jax import host_malloc
from flan_jax.errors import FlanJaxError
from flan_jax.train import distributed
from flan_jax.train import mesh as mesh_lib
from flan_jax.train.checkpoint import Checkpointer
from flan_jax.train.loss import DEFAULT_HEAD_CAPACITY
from flan_jax.train.metrics import MetricsWriter, measure_matmul_peak, model_flops_per_step
from flan_jax.train.optim import Optimizer, adafactor
from flan_jax.train.state import TrainState, create_state, num_params, state_shardings
from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn
from flan_jax.train.synthetic import synthetic_batch, synthetic_batches

log = logging.getLogger("flan_jax.train")
EvalHook = Callable[[Any, int], Mapping[str, float]]  # (params, step) -> named scalars
SYNTHETIC = "synthetic"  # mixture name for the built-in synthetic copy task (no data files)


class TrainingDivergedError(FlanJaxError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainResult:
    state: TrainState | None  # None after a dry run
    step: int
    batches_consumed: int
    losses: list[float]  # one per step run by this call
    last_metrics: dict[str, float]


@gin.configurable
def loss_options(z_loss: float = 1e-4, label_smoothing: float = 0.0, normalization: str = "tokens",
                 custom_vjp: bool = False,
                 head_capacity: float | None = DEFAULT_HEAD_CAPACITY) -> dict[str, Any]:
    """Keyword arguments for `loss.cross_entropy_loss` (t5x's default z-loss 1e-4) and the
    step's `head_capacity`: the output projection and the loss run at the loss positions only,
    in chunks of this fraction of each device's micro-batch positions (exact whatever the
    fraction; `loss.head_cross_entropy_loss`, docs/training.md); None: full [B, L, V] logits."""
    return {"z_loss": z_loss, "label_smoothing": label_smoothing, "normalization": normalization,
            "custom_vjp": custom_vjp, "head_capacity": head_capacity}


@gin.configurable
def data_options(pack: bool = True, packer: str = "best_fit", split: str = "train",
                 shuffle: bool = True) -> dict[str, Any]:
    """Keyword arguments for `data.pipeline.batches` (packing on, endless epochs)."""
    return {"pack": pack, "packer": packer, "split": split, "shuffle": shuffle}


def _register(name: str) -> None:
    """Register the seqio task (`collection.source:variant`) or the mixture (mixtures/*.toml);
    a mixture registered with seqio by the caller (e.g. the main job's control) is used as is."""
    import seqio

    from flan_jax.data import mixtures, tasks

    if ":" in name and "." in name:
        tasks.ensure_task(name)
    elif name in mixtures.load_files()[0] or name not in seqio.MixtureRegistry.names():
        mixtures.register_mixture(name)


def _check_vocabulary(model_vocab_size: int) -> None:
    """Token ids from the data must index the model's embedding table (a gather would clamp)."""
    from flan_jax.data import tasks

    data_vocab_size = int(tasks.default_vocabulary().vocab_size)
    if data_vocab_size > model_vocab_size:
        raise FlanJaxError(f"the data vocabulary has {data_vocab_size} ids but the model's vocab_size is "
                           f"{model_vocab_size}; bind the model's vocab_size >= {data_vocab_size}")


def _build_model(model: Any, pretrained: str | None) -> tuple[Any, Any, Any]:
    """(flax module, its config, pretrained params or None)."""
    from flan_jax.models import params_io

    params = None
    if pretrained:
        config, params = params_io.load_checkpoint(pretrained)
        model = config if model is None else model
    if model is None:
        raise FlanJaxError("train: no model (bind train.model = @T5Config() / @DecoderConfig() / @Gemma3Config(), "
                           "or give train.pretrained)")
    module = model if hasattr(model, "apply") else params_io.build_model(model)
    return module, getattr(module, "config", None), params


@gin.configurable(denylist=["dry_run"])
def train(
    model: Any = None,
    mixture: str | None = None,
    feature_lengths: Mapping[str, int] | None = None,
    batch_size: int = 32,
    num_microbatches: int = 1,
    optimizer: Optimizer | None = None,
    num_steps: int = 1000,
    mesh_shape: Mapping[str, int] | Sequence[int] = (-1, 1, 1),
    model_dir: str | None = None,
    checkpoint_every: int = 500,
    keep_checkpoints: int | None = 3,
    eval_hooks: Sequence[EvalHook] = (),
    eval_every: int = 0,
    seed: int = 0,
    pretrained: str | None = None,
    log_every: int = 10,
    dry_run: bool = False,
) -> TrainResult:
    """Train `model` on `mixture` for `num_steps` optimizer steps (resuming from `model_dir`).

    model: a T5Config / DecoderConfig / Gemma3Config (or a flax module following the model contract).
    mixture: a mixture from mixtures/*.toml, a task `collection.source:variant`, or "synthetic".
    feature_lengths: {"inputs": Li, "targets": Lt} (decoder formats use rows of Li + Lt).
    batch_size: global rows per step, split into `num_microbatches` accumulated micro-batches.
    pretrained: a params_io checkpoint dir to start from (ignored when model_dir has a checkpoint).
    eval_hooks: callables (params, step) -> {name: value}, run every `eval_every` steps and at the end.
    dry_run: build everything abstractly (shapes only: no init, no compile, no data read).
    """
    if mixture is None:
        raise FlanJaxError("train: no mixture (bind train.mixture to a mixture or task name, or 'synthetic')")
    if model_dir is None and not dry_run:
        raise FlanJaxError("train: no model_dir (flan-jax train --model_dir=DIR, or bind train.model_dir)")
    lengths = dict(feature_lengths or {"inputs": 256, "targets": 128})
    optimizer = optimizer or adafactor()
    loss_kwargs = loss_options()
    module, config, pretrained_params = _build_model(model, pretrained)
    feature_format = module.FEATURE_FORMAT

    # ---- mesh: devices -> (data, fsdp, tensor); the batch must split evenly over data x fsdp.
    mesh = mesh_lib.make_mesh(mesh_shape)
    mesh_lib.check_batch(mesh, batch_size, num_microbatches)
    num_hosts, host = jax.process_count(), jax.process_index()
    if jax.default_backend() == "cpu" and (hint := host_malloc.untuned_hint(os.environ)):
        log.info(hint)
    host_batch_size = distributed.host_batch_size(batch_size)
    if num_hosts > 1:  # each host must own one contiguous block of rows of the global batch
        distributed.process_rows(mesh_lib.batch_sharding(mesh), batch_size)

    # ---- data: each host reads its own shard (batch_size / hosts rows); `start_batch` replays
    # the stream to a position.
    vocab_size = int(getattr(config, "vocab_size", 32))
    example = synthetic_batch(feature_format, lengths, 1, vocab_size, 0)  # shapes for init only
    if mixture != SYNTHETIC:
        _register(mixture)
        _check_vocabulary(vocab_size)

    def make_batches(start_batch: int) -> Iterator[dict[str, np.ndarray]]:
        if mixture == SYNTHETIC:
            return synthetic_batches(feature_format, lengths, host_batch_size, vocab_size, seed=seed,
                                     start_batch=start_batch, shard_index=host)
        from flan_jax.data import features, pipeline

        return pipeline.batches(mixture, feature_format, lengths, host_batch_size, shard_index=host,
                                num_shards=num_hosts, seed=seed, start_batch=start_batch,
                                num_epochs=None, bos_id=features.model_bos_id(module), **data_options())

    def global_batch(local: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
        return distributed.global_batch(local, mesh_lib.batch_sharding(mesh))

    # ---- state: shapes and shardings decided once, from the logical axis rules.
    abstract, shardings = state_shardings(module, optimizer.tx, example, mesh)
    log.info("model %s: %.2fM parameters, format %s, mesh %s", type(module).__name__,
             num_params(abstract.params) / 1e6, feature_format, dict(mesh.shape))

    # ---- step: jitted with in/out shardings, the state donated.
    train_step = jit_train_step(
        make_train_step(model_apply_fn(module), optimizer, num_microbatches=num_microbatches,
                        loss_kwargs=loss_kwargs, mesh=mesh, dropout_seed=seed), mesh, shardings)
    if dry_run:
        return TrainResult(None, 0, 0, [], {})

    # ---- restore: the latest checkpoint (state + data position), else pretrained or random init.
    checkpoints = Checkpointer(os.path.join(model_dir, "checkpoints"), save_every=checkpoint_every,
                               keep=keep_checkpoints)
    if checkpoints.latest_step() is not None:
        state, consumed = checkpoints.restore(abstract, shardings)
        log.info("resumed from %s step %d (%d batches consumed)", checkpoints.directory,
                 int(state.step), consumed)
    else:
        state = create_state(module, optimizer.tx, example, abstract, shardings, seed=seed,
                             params=pretrained_params)
        consumed = 0
    batches = make_batches(consumed)

    # ---- loop: step, check, checkpoint, log, evaluate.
    writer = MetricsWriter(os.path.join(model_dir, "tensorboard") if host == 0 else None)
    peak = measure_matmul_peak()
    first = next(batches)
    flops = model_flops_per_step(abstract.params, config, {k: (batch_size,) + np.shape(v)[1:]
                                                           for k, v in first.items()})
    # all positions the model processes per step (encoder + decoder, padding included)
    tokens_per_step = batch_size * sum(np.shape(first[k])[1] for k in ("encoder_input_tokens",
                                                                          "decoder_input_tokens") if k in first)
    step, losses, m = int(jax.device_get(state.step)), [], {}
    first_step = step + 1  # includes compilation: excluded from the throughput window
    progress = tqdm.tqdm(total=num_steps, initial=step, disable=None if host == 0 else True,
                         desc="train", dynamic_ncols=True)
    window = {"start": time.perf_counter(), "steps": 0, "tokens": 0.0}

    def finish(done_step: int, metrics: Mapping[str, jax.Array]) -> dict[str, float]:
        """Fetch one step's metrics, stop on NaN/inf, log. Runs one step late (while the next
        step computes) except before a checkpoint, an eval or the end."""
        out = {k: float(v) for k, v in jax.device_get(metrics).items()}
        bad = [k for k in ("loss", "grad_norm", "update_norm") if not math.isfinite(out[k])]
        if bad:
            checkpoints.wait()
            raise TrainingDivergedError(
                f"{bad[0]} is {out[bad[0]]} at step {done_step}; stopped without saving. The last good "
                f"checkpoint (step {checkpoints.latest_step()}) is kept in {checkpoints.directory}; "
                "lower the learning rate or check the data")
        losses.append(out["loss"])
        progress.update(1)
        progress.set_postfix(loss=f"{out['loss']:.4f}", refresh=False)
        if done_step == first_step:
            window.update(start=time.perf_counter(), steps=0, tokens=0.0)
        else:
            window["steps"] += 1
            window["tokens"] += out["target_tokens"]
        if done_step % log_every == 0 or done_step == num_steps:
            elapsed = max(time.perf_counter() - window["start"], 1e-9)
            if window["steps"]:
                out["target_tokens_per_s"] = window["tokens"] / elapsed
                out["tokens_per_s"] = tokens_per_step * window["steps"] / elapsed
                out["steps_per_s"] = window["steps"] / elapsed
                out["mfu"] = flops * window["steps"] / elapsed / peak
            writer.write(done_step, out)
            stats = getattr(batches, "stats", None)  # the data pipeline's running counts:
            if stats is not None:  # truncated, dropped and zero-loss examples are reported
                writer.write(done_step, {k: v for k, v in stats.as_dict().items()
                                         if isinstance(v, (int, float))}, prefix="data")
            window.update(start=time.perf_counter(), steps=0, tokens=0.0)
        return out

    unchecked = None  # (step, metrics) dispatched but not yet fetched
    pending = first
    try:
        while step < num_steps:
            local = pending if pending is not None else next(batches)
            pending = None
            state, metrics = train_step(state, global_batch(local))  # dispatched asynchronously
            consumed += 1
            step += 1
            if unchecked is not None:
                m = finish(*unchecked)
            unchecked = (step, metrics)
            save_now = checkpoints.is_due(step)
            eval_now = bool(eval_hooks) and (bool(eval_every) and step % eval_every == 0 or step == num_steps)
            if save_now or eval_now or step == num_steps:  # never save or evaluate an unchecked state
                m, unchecked = finish(*unchecked), None
            if save_now:
                checkpoints.save(state, consumed, step=step)
            if eval_now:
                for hook in eval_hooks:
                    writer.write(step, hook(state.params, step), prefix="eval")
        if unchecked is not None:
            m = finish(*unchecked)
        checkpoints.save(state, consumed, step=step, force=True)
    finally:
        checkpoints.close()
        writer.close()
        progress.close()
    return TrainResult(state, step, consumed, losses, m)
