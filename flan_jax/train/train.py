"""`train()`: the whole training run, top to bottom: mesh, data, state, step, restore, loop.

Everything is importable (a notebook calls `train(...)` directly); the CLI (`flan-jax train`,
commands/train.py) only parses gin files and calls it. Resuming is automatic: when `model_dir` holds
a checkpoint, the run continues from its step and data position.

Files under `model_dir`: `checkpoints/<step>/` (orbax; params, optimizer state, step, data
position and the data stream's identity), `tensorboard/` (event files: loss, accuracy, tokens/s,
MFU, eval results) and `.lock` while a run is active. What may be in `model_dir`, and the lock
that refuses a second run on it: run_dir.py. The data's first batch is read before
`checkpoints/` and `tensorboard/` are created, so bad data leaves nothing behind.
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
from flan_jax import progress as progress_lines
from flan_jax.errors import FlanJaxError
from flan_jax.train import distributed
from flan_jax.train import mesh as mesh_lib
from flan_jax.train import run_dir
from flan_jax.train import train_data
from flan_jax.train.checkpoint import Checkpointer
from flan_jax.train.metrics import MetricsWriter, measure_matmul_peak, model_flops_per_step
from flan_jax.train.optim import Optimizer, adafactor
from flan_jax.train import lora_training
from flan_jax.train import microbatch
from flan_jax.train.state import TrainState, create_state, num_params, state_shardings
from flan_jax.train.step import fits_spec, global_batch_spec, jit_train_step, make_train_step, model_apply_fn
from flan_jax.train.synthetic import synthetic_batch, synthetic_batches
from flan_jax.train.train_setup import _build_model, loss_options

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
    note: str = ""  # why no step ran, when none did


@gin.configurable(denylist=["dry_run"])
def train(
    model: Any = None,
    mixture: str | None = None,
    feature_lengths: Mapping[str, int] | None = None,
    batch_size: int = 32,
    num_microbatches: int | str = 1,
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
    allow_data_change: bool = False,
    lora: Any = None,
    dry_run: bool = False,
) -> TrainResult:
    """Train `model` on `mixture` for `num_steps` optimizer steps (resuming from `model_dir`).

    model: a T5Config / DecoderConfig / Gemma3Config (or a flax module following the model contract).
    mixture: a mixture from mixtures/*.toml, a task `collection.source:variant`, or "synthetic".
    feature_lengths: {"inputs": Li, "targets": Lt} (decoder formats use rows of Li + Lt).
    batch_size: global rows per step, split into `num_microbatches` accumulated micro-batches;
      "auto": the fewest whose compiled step fits `microbatch_options`' memory budget (chosen
      once the first batch is read, logged with the predicted peak; train/microbatch.py).
    pretrained: a params_io checkpoint dir to start from (ignored when model_dir has a checkpoint).
    eval_hooks: callables (params, step) -> {name: value}, run every `eval_every` steps and at the end.
    allow_data_change: resume although the checkpoint's data stream (mixture name and what it
      is -- tasks, shares, templates, files: data/mixing/fingerprint.py --, lengths, batch
      size, seed, packing, hosts) differs from this run's; refused otherwise, in one line naming
      what changed. A changed batch
      size alone continues at the same row when the rows consumed divide by it; any other
      change starts the new stream from its beginning (logged).
    Raises FlanJaxError (one line) for bad arguments, an unusable or busy model_dir
      (run_dir.RunDirError), a failed checkpoint write (checkpoint.CheckpointWriteError) and a
      NaN/inf loss (TrainingDivergedError). When no step is due (num_steps 0, or the checkpoint
      already at num_steps) nothing is written and `note` says so.
    dry_run: build everything abstractly (shapes only: no init, no compile, no data read).
    """
    if mixture is None:
        raise FlanJaxError("train: no mixture (bind train.mixture to a mixture or task name, or 'synthetic')")
    if model_dir is None and not dry_run:
        raise FlanJaxError("train: no model_dir (flan-jax train --model_dir=DIR, or bind train.model_dir)")
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 0:
        raise FlanJaxError(f"train.num_steps must be an int >= 0, got {num_steps!r}")
    lengths = dict(feature_lengths or {"inputs": 256, "targets": 128})
    optimizer = optimizer or adafactor()
    loss_kwargs = loss_options()
    module, config, pretrained_params = _build_model(model, pretrained)
    feature_format = module.FEATURE_FORMAT

    # ---- mesh: devices -> (data, fsdp, tensor); the batch must split evenly over data x fsdp.
    mesh = mesh_lib.make_mesh(mesh_shape)
    on_cpu = mesh.devices.flat[0].platform == "cpu"  # one step at a time, the first batch read first
    auto_microbatches = num_microbatches == microbatch.AUTO
    if not auto_microbatches and (not isinstance(num_microbatches, int) or isinstance(num_microbatches, bool)):
        raise FlanJaxError(f"train.num_microbatches must be an int >= 1 or 'auto', got {num_microbatches!r}")
    mesh_lib.check_batch(mesh, batch_size, 1 if auto_microbatches else num_microbatches)
    budget = microbatch.memory_budget_bytes(**microbatch.microbatch_options()) if auto_microbatches else 0
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
    audit_counts: dict[str, int] = {}  # examples the mixture's drop_flagged option dropped
    if mixture != SYNTHETIC:
        audit_counts = train_data.register(mixture, feature_format, lengths["inputs"])
        train_data.check_vocabulary(vocab_size)
        if audit_counts:
            log.info("audit: %s", " ".join(f"{k}={v}" for k, v in audit_counts.items()))

    options = train_data.data_options()
    cache_dir = options.pop("cache_dir", None)
    cache_workers, block_size = options.pop("cache_workers", 0), options.pop("cache_block_size", 4096)
    if cache_dir and audit_counts:
        raise FlanJaxError(f"train: mixture {mixture!r} drops audit-flagged examples (drop_flagged), "
                           "which a cache (data_options.cache_dir) does not apply yet; train without the cache")

    def make_batches(start_batch: int, cache_state: Mapping[str, int] | None = None) -> Iterator[dict[str, np.ndarray]]:
        if mixture == SYNTHETIC:
            return synthetic_batches(feature_format, lengths, host_batch_size, vocab_size, seed=seed,
                                     start_batch=start_batch, shard_index=host)
        from flan_jax.data.features import converters as features, pipeline

        if cache_dir:
            from flan_jax.data.cache import cached_pipeline
            from flan_jax.data.mixing import mixtures

            leaves = mixtures.resolve(mixture, mixtures.load_files()[0]) if ":" not in mixture else None
            rates = cached_pipeline.resolve_rates(leaves) if leaves else {mixture: 1.0}
            stream = cached_pipeline.stream_spec(cache_dir, rates, options["split"], seed=seed,
                                                 shard_index=host, num_shards=num_hosts)
            spec = cached_pipeline.BlockSpec(stream, feature_format, tuple(lengths.items()),
                                             pack=options["pack"], block_size=block_size,
                                             bos_id=features.model_bos_id(module))
            return cached_pipeline.CachedBatches(spec, host_batch_size, state=cache_state, workers=cache_workers)
        return pipeline.batches(mixture, feature_format, lengths, host_batch_size, shard_index=host,
                                num_shards=num_hosts, seed=seed, start_batch=start_batch,
                                num_epochs=None, bos_id=features.model_bos_id(module), **options)

    # what fixes the order of the batches: stored with the data position, checked on resume
    # (cache_workers is not: the cached stream's batches do not depend on it)
    # "data": what the mixture is (tasks, shares, templates, files), so a mixture redefined
    # under the same name is not continued as if it were the same
    identity = {"mixture": mixture, "format": feature_format, "feature_lengths": lengths,
                "batch_size": batch_size, "seed": seed, "num_hosts": num_hosts,
                **({} if mixture == SYNTHETIC else
                   {**{k: v for k, v in train_data.data_options().items() if k not in train_data.ORDER_FREE},
                    "data": train_data.fingerprint(mixture, options["split"])})}

    def global_batch(local: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
        return distributed.global_batch(local, mesh_lib.batch_sharding(mesh))

    # ---- state: shapes and shardings decided once, from the logical axis rules.
    # With `lora` (a LoraConfig) the state's params are the adapters and the base is frozen.
    if lora is None:
        abstract, shardings = state_shardings(module, optimizer.tx, example, mesh)
        apply_fn = model_apply_fn(module)
    else:
        abstract, shardings = lora_training.state_shardings(module, lora, optimizer.tx, example, mesh)
        apply_fn = lora_training.apply_fn(module, lora)
        log.info("LoRA: %.3fM adapter parameters trained, %.2fM frozen", num_params(abstract.params) / 1e6,
                 num_params(abstract.frozen) / 1e6)
    log.info("model %s: %.2fM parameters, format %s, mesh %s", type(module).__name__,
             num_params(abstract.frozen if lora is not None else abstract.params) / 1e6, feature_format,
             dict(mesh.shape))

    # ---- step: jitted with in/out shardings, the state donated. With num_microbatches="auto"
    # it is compiled once the first batch is read (its fields, shapes and dtypes).
    def build_step(k: int) -> Callable:
        return jit_train_step(make_train_step(apply_fn, optimizer, num_microbatches=k, loss_kwargs=loss_kwargs,
                                              mesh=mesh, dropout_seed=seed), mesh, shardings)

    train_step = None if auto_microbatches else build_step(num_microbatches)
    if dry_run:
        return TrainResult(None, 0, 0, [], {})

    # ---- restore: refuse a foreign or busy model_dir; the latest checkpoint (state + data
    # position, its data identity checked), else pretrained or random init. Off CPU the first
    # batch is read in a background thread meanwhile (train_data.FirstBatch).
    model_dir = os.path.abspath(model_dir)
    run_dir.check_model_dir(model_dir)
    lock = run_dir.RunLock(model_dir) if host == 0 else None
    if lock is not None:
        lock.acquire()
    checkpoints = writer = progress = batches = reader = None
    ok = False
    try:
        ckpt_dir = os.path.join(model_dir, "checkpoints")
        if os.path.isdir(ckpt_dir):
            checkpoints = Checkpointer(ckpt_dir, save_every=checkpoint_every, keep=keep_checkpoints)
        resume = checkpoints is not None and checkpoints.latest_step() is not None
        consumed, cache_state = (train_data.resume_position(checkpoints, identity, mixture, batch_size,
                                                            allow_data_change) if resume else (0, None))
        if (checkpoints.latest_step() if resume else 0) < num_steps:
            reader = train_data.FirstBatch(
                lambda start=consumed, at=cache_state: make_batches(start, at),
                f"train: mixture {mixture!r} yields no batch of {batch_size} rows "
                f"(split {train_data.data_options()['split']!r})",
                background=not on_cpu)
        if resume:
            state, _ = checkpoints.restore(abstract, shardings)
            if lora is not None:  # the frozen base is not in checkpoints: rebuilt from its source
                state = state.replace(frozen=lora_training.frozen_base(
                    module, example, abstract, shardings, seed, pretrained_params))
            log.info("resumed from %s step %d (%d batches consumed)", checkpoints.directory,
                     int(state.step), consumed)
        elif lora is None:
            state = create_state(module, optimizer.tx, example, abstract, shardings, seed=seed,
                                 params=pretrained_params)
        else:
            base = lora_training.frozen_base(module, example, abstract, shardings, seed, pretrained_params)
            state = lora_training.create_state(module, lora, optimizer.tx, example, abstract, shardings,
                                               base, seed)
        pretrained_params = None  # the state holds its own copy (1 GiB for a 270M model)
        step = int(jax.device_get(state.step))
        if step >= num_steps:  # say so; no loss is reported for steps that did not run
            note = ("nothing to train: num_steps is 0" if step == 0 else
                    f"nothing to train: the checkpoint in {checkpoints.directory} is at step {step}, "
                    f"num_steps is {num_steps}")
            log.info(note)
            adapters = os.path.join(model_dir, "adapters", str(step))
            if lora is not None and host == 0 and step > 0 and not os.path.isdir(adapters):
                # a run stopped after its last checkpoint, before its adapters were written
                lora_training.save_adapters(adapters, state.params, lora,
                                            os.path.abspath(pretrained) if pretrained else None)
                log.info("wrote the adapters of step %d to %s (the run that trained them stopped "
                         "before writing them)", step, adapters)
            ok = True
            return TrainResult(state, step, consumed, [], {}, note=note)
        # ---- step compiled (while the first batch is read, off CPU) for the fields, shapes and dtypes
        # of the data format (`example`); a first batch that differs is stepped by the jitted
        # step, which compiles for it.
        state_in = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                abstract, shardings)
        expected = global_batch_spec(example, batch_size, mesh)
        compiled = None if auto_microbatches else train_step.lower(state_in, expected).compile()
        # ---- data check: the first batch is read before checkpoints/ and tensorboard/ exist
        batches, first = reader.result()
        if compiled is not None and fits_spec(first, expected):
            train_step = compiled
        elif compiled is not None:
            log.info("the first batch's fields differ from the format's %s: the step compiles for them",
                     sorted(expected))
        if auto_microbatches:
            train_step, _ = microbatch.auto_train_step(build_step, state_in, first, mesh, batch_size, budget)
        if checkpoints is None:
            checkpoints = Checkpointer(ckpt_dir, save_every=checkpoint_every, keep=keep_checkpoints)

        # ---- loop: step, check, checkpoint, log, evaluate.
        writer = MetricsWriter(os.path.join(model_dir, "tensorboard") if host == 0 else None)
        peak = measure_matmul_peak()
        flops = model_flops_per_step(abstract.params, config, {k: (batch_size,) + np.shape(v)[1:]
                                                               for k, v in first.items()})
        # all positions the model processes per step (encoder + decoder, padding included)
        tokens_per_step = batch_size * sum(np.shape(first[k])[1] for k in ("encoder_input_tokens",
                                                                              "decoder_input_tokens") if k in first)
        losses, m = [], {}
        first_step = step + 1  # includes compilation: excluded from the throughput window
        # a bar on host 0's terminal (also behind flan-jax's stderr filter), none in logs or --quiet
        shown = host == 0 and progress_lines.is_terminal() and not progress_lines.is_quiet()
        progress = tqdm.tqdm(total=num_steps, initial=step, disable=not shown, desc="train", dynamic_ncols=True)
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
                host_malloc.release_free_memory()  # the compilation's freed memory, back to the OS
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
                # the data pipeline's running counts (truncated, dropped and zero-loss examples
                # are reported) and the audit's drop counts
                stats = getattr(batches, "stats", None)
                if stats is not None:
                    counts = {k: v for k, v in stats.as_dict().items() if isinstance(v, (int, float))}
                    writer.write(done_step, {**counts, **audit_counts}, prefix="data")
                window.update(start=time.perf_counter(), steps=0, tokens=0.0)
            return out

        unchecked = None  # (step, metrics) dispatched but not yet fetched
        pending = first
        # On CPU one step runs at a time: a step dispatched while the previous one computes
        # allocates its host temporaries beside the previous step's, and a heap that keeps freed
        # memory (host_malloc's tuned settings) grows with every such overlap (Gemma 3 270M,
        # 8 x 128: 11.6 GiB flat one at a time, 19.7 GiB and rising two at a time; docs/training.md).
        # The next batch is still read while the step computes. Accelerators keep one queued.

        def position() -> dict[str, Any]:
            out = {"rows_consumed": consumed * batch_size, "identity": identity}
            if cache_dir:  # every batch produced so far is consumed when a checkpoint is saved;
                # all hosts' positions, gathered (a collective: every host saves at the same step)
                out["cache_state"] = distributed.gather_data_states(batches.state())
            return out

        while step < num_steps:
            local = pending if pending is not None else next(batches)
            pending = None
            if on_cpu and unchecked is not None:
                m, unchecked = finish(*unchecked), None  # waits for the previous step
            state, metrics = train_step(state, global_batch(local))  # dispatched asynchronously
            consumed += 1
            step += 1
            checkpoints.check_for_errors()  # a failed background save stops the run now
            if unchecked is not None:
                m = finish(*unchecked)
            unchecked = (step, metrics)
            save_now = checkpoints.is_due(step)
            eval_now = bool(eval_hooks) and (bool(eval_every) and step % eval_every == 0 or step == num_steps)
            if save_now or eval_now or step == num_steps:  # never save or evaluate an unchecked state
                m, unchecked = finish(*unchecked), None
            if save_now:
                checkpoints.save(state, consumed, step=step, data=position())
            if eval_now:
                for hook in eval_hooks:
                    writer.write(step, hook(state.params, step), prefix="eval")
        if unchecked is not None:
            m = finish(*unchecked)
        checkpoints.save(state, consumed, step=step, force=True, data=position())
        checkpoints.wait()  # the last save's background write: its failure is this run's
        if lora is not None and host == 0:  # the adapters alone, applied to `pretrained` by path
            lora_training.save_adapters(os.path.join(model_dir, "adapters", str(step)), state.params, lora,
                                        os.path.abspath(pretrained) if pretrained else None)
        ok = True
        return TrainResult(state, step, consumed, losses, m)
    finally:
        errors = []
        if batches is not None and hasattr(batches, "close"):  # a cached stream's packing processes
            batches.close()
        elif reader is not None:  # stopped before the loop took the iterator
            reader.close()
        for resource in (progress, writer, checkpoints):
            try:
                if resource is not None:
                    resource.close()
            except FlanJaxError as e:
                errors.append(e)
        if lock is not None:
            lock.release()
        if ok and errors:  # when a failure is already propagating, it is the one reported
            raise errors[0]
