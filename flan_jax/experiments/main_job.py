"""The main job (`make run`, `flan-jax main`): FLAN's held-out experiment from a pretrained base.

1. config: `gin_configs/experiments/main_job.gin` (Gemma 3 270M, AdamW, flan-nl with one cluster
   held out); `--gin.KEY=VALUE` overrides it.
2. base: the pretrained checkpoint (`main_job_options.base`: "gguf:gemma-3-270m", the optional
   `.[gemma]` extra, or any GGUF file or flan_jax checkpoint), converted once into the cache;
   the data use its tokenizer.
3. before: zero-shot rank classification on the evaluation split of every flan-nl cluster. Each
   example is shown with one of its dataset's non-inverted templates, in turn (example j of a task
   uses template j mod 10), so a cluster score averages over all templates.
4. tune: `train()` from the base on `flan_nl_heldout_no_<held-out>` (FLAN's exclusions apply);
   full fine-tuning, or LoRA with `train.lora = @LoraConfig()` (the adapters merged for step 5).
5. after: the same evaluation on the tuned parameters.
6. control: the same tuning with every instruction replaced by the bare inputs (FLAN's
   "no template" ablation: `flan_nl_no_template_heldout_no_<C>`, flan_nl.no_template_spec),
   evaluated the same way.
7. the run folder: train/ and control/ (each the trainer's checkpoints/ and tensorboard/),
   eval_before/, eval_after/,
   eval_control/ (report JSON, Markdown, plot), loss.png, clusters_before_after.png, summary.md and
   summary.json with per-cluster scores, 95% bootstrap intervals (eval/bootstrap.py) and the paired
   changes after - before and after - control. The summary ends with the `flan-jax generate`
   command that tries the tuned model (`try_command`). Each phase shows its progress on stderr
   (flan_jax/progress.py: bars on a terminal, one line per phase in logs, none with --quiet).
8. restarts: each completed phase (eval_before, tune, eval_after, control_tune, control_eval)
   leaves a marker with its outputs in `phases/` (experiments/phases.py, written atomically
   after the phase's own files), so the same command on the same run folder resumes at the
   phase it was stopped in: completed phases are read back, a stopped tuning continues from its
   last checkpoint (train(); its loss curve then starts at that step: a line says so), and
   the summary is written last, atomically. The same folder with other settings is refused.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import resource
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gin
import numpy as np

from flan_jax import host_malloc, progress
from flan_jax.errors import FlanJaxError
from flan_jax.eval import compilations
from flan_jax.experiments.heldout_report import plot_clusters, plot_losses, report, summarize, summary_table
from flan_jax.experiments.phases import Phases, write_json_atomically

EXPERIMENT = "experiments/main_job.gin"
log = logging.getLogger("flan_jax.main")


@gin.configurable
def main_job_options(base: str = "gguf:gemma-3-270m", held_out_cluster: str = "nl_nli",
                     eval_split: str = "test", held_out_examples_per_task: int = 150,
                     held_in_examples_per_task: int = 30, eval_lengths: Mapping[str, int] | None = None,
                     eval_batch_size: int = 32, control: bool = True,
                     compilation_cache: bool = True) -> dict[str, Any]:
    """The main job's own settings, bound in the experiment gin file (`main_job_options.*`).
    compilation_cache: keep XLA executables in `<FLAN_JAX_CACHE>/xla` (jax's persistent
    compilation cache), so the control tuning reuses the tuning's compiled step (the same
    program) and a repeated run reuses every compilation."""
    return {"base": base, "held_out_cluster": held_out_cluster, "eval_split": eval_split,
            "held_out_examples_per_task": held_out_examples_per_task,
            "held_in_examples_per_task": held_in_examples_per_task,
            "eval_lengths": dict(eval_lengths or {"inputs": 160, "targets": 12}),
            "eval_batch_size": eval_batch_size, "control": control, "compilation_cache": compilation_cache}


# ----------------------------------------------------------------------------- the base model


def base_checkpoint(base: str, cache: str | os.PathLike | None = None) -> tuple[Path, Path | None]:
    """(flan_jax checkpoint dir, GGUF file or None) of `base`; a GGUF is converted once into
    `~/.cache/flan_jax/base/<sha256 of its path and size>` and reused."""
    from flan_jax.data.features.gguf_vocab import resolve_gguf_path
    from flan_jax.user_cache import cache_dir
    from flan_jax.models import gguf_io, params_io

    if base.startswith("gguf:") or base.endswith(".gguf"):
        gguf = resolve_gguf_path(base)
        if not Path(gguf).is_file():
            raise FlanJaxError(f"main job: base {base!r}: no such GGUF file")
        key = hashlib.sha256(f"{Path(gguf).resolve()}|{Path(gguf).stat().st_size}".encode()).hexdigest()[:16]
        out = Path(cache or cache_dir()) / "base" / key
        if not (out / params_io.PARAMS_FILE).is_file():
            config, params = gguf_io.load_gguf(gguf)
            params_io.save_checkpoint(out, config, params)
        return out, Path(gguf)
    if not Path(base).is_dir():
        raise FlanJaxError(f"main job: base {base!r} is neither a GGUF file nor a checkpoint directory")
    return Path(base), None


# ----------------------------------------------------------------------------- evaluation


def eval_examples(cluster_specs: Mapping[str, Sequence[Any]], split: str, per_task: int, vocabulary: Any
                  ) -> dict[str, dict[str, list[dict]]]:
    """{cluster: {dataset: examples}} of flan-nl's procedural `split`: example j rendered with
    the dataset's j-th non-inverted template modulo their number (the `eval_t<i>` variant's
    rendering, done here directly rather than through 180 seqio tasks), inputs tokenized."""
    from flan_jax.data.tasks import registry as tasks

    out: dict[str, dict[str, list[dict]]] = {}
    config = tasks.default_render_config()
    for cluster, specs in cluster_specs.items():
        for spec in specs:
            source = spec.sources[spec.name]
            rows = source.generate(source.split_seeds[split], min(per_task, source.split_sizes[split]))
            variants = tasks.eval_variants(spec.templates)
            examples = []
            for j, fields in enumerate(rows):
                variant = variants[j % len(variants)]
                renderer = tasks.ExampleRenderer(spec, f"flan_nl.{spec.name}:{variant}", variant,
                                                 tuple(spec.templates), config)
                ex = renderer(fields)
                examples.append({**ex, "inputs": np.asarray(vocabulary.encode(ex["inputs"]), np.int32)})
            out.setdefault(cluster, {})[spec.name] = examples
    return out


def score(module: Any, params: Any, examples: Mapping[str, Mapping[str, list[dict]]], *, vocabulary: Any,
          lengths: Mapping[str, int], batch_size: int, bar: Any = None) -> dict[str, dict[str, list[int]]]:
    """{cluster: {source: per-example 0/1 correctness}} by rank classification; `bar` (a
    progress.Phase) counts the examples scored.

    Every dataset's examples go through one `rank_classify` call: packed rows then mix datasets
    (an example's scores do not depend on its row mates), so the calls are full and their shapes
    few. Measured on the flan-nl job's 600 evaluation examples (the Gemma 3 270M base, one
    process each, 2-core CPU; `bench/main_job_eval.py`): one call per dataset 141.4 s with 15
    compilations (16.5 s), one call for all 74.1 s with 3 (3.7 s), the same correctness for
    every example (docs/benchmarks.md).
    The real-data job pools the same way, one call per kind (`real_data.score`: with and
    without acc_mutual_info)."""
    from flan_jax.eval.aggregate import pool_by_dataset, split_by_dataset
    from flan_jax.eval.rank_classification import rank_classify

    pooled = pool_by_dataset(examples)
    result = rank_classify(module, params, pooled, vocabulary=vocabulary, lengths=lengths,
                           batch_size=batch_size, where="main job evaluation")
    hits = [int(p == _text(r["answer"])) for p, r in zip(result.predicted_options, pooled)]
    if bar is not None:
        bar.update(len(pooled))
    return split_by_dataset(hits, examples)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------- the job


def use_compilation_cache() -> None:
    """Keep XLA executables in `<FLAN_JAX_CACHE>/xla` (jax's persistent compilation cache), so a
    rerun, a resumed job or a sweep's next run skips compiling the programs an earlier one built.
    jax opens its cache once per process, so a new folder (another FLAN_JAX_CACHE) resets it."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    from flan_jax.user_cache import cache_dir

    folder = str(cache_dir() / "xla")
    if jax.config.jax_compilation_cache_dir != folder:
        compilation_cache.reset_cache()
        jax.config.update("jax_compilation_cache_dir", folder)


def use_base(base: str) -> Path:
    """The flan_jax checkpoint dir of `base` (`base_checkpoint`); a GGUF base's tokenizer becomes
    every task's vocabulary (gin `vocabulary_file.path`), as the main job uses it."""
    ckpt, gguf = base_checkpoint(base)
    if gguf is not None:
        with gin.unlock_config():
            gin.bind_parameter("vocabulary_file.path", str(gguf))
    return ckpt


def job_settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """What must match for a run folder's completed phases to be reused: the job's options and
    every gin binding (`gin <selector>` -> its value as gin prints it)."""
    out: dict[str, Any] = {"main_job_options": dict(options)}
    key = None
    for line in gin.config_str().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace() and " = " in line:
            key, _, value = line.partition(" = ")
            key = f"gin {key.strip()}"
            out[key] = value.strip()
        elif key is not None:  # a value continued on the next lines
            out[key] += " " + line.strip()
    return out


def try_command(run_dir: Path, base: Path) -> str:
    """The `flan-jax generate` line that tries the job's tuned model (`run_dir/train`, a full
    fine-tuning with `base` as its config, or LoRA adapters merged into it) interactively, with
    the vocabulary the job used (`vocabulary_file`: the GGUF base's tokenizer by default)."""
    from flan_jax.data.features.vocab import vocabulary_file

    words = ["flan-jax", "generate", "--checkpoint", str(run_dir / "train"), "--base", str(base)]
    vocabulary, _ = vocabulary_file()
    if vocabulary:
        words += ["--vocabulary", str(vocabulary)]
    return " ".join(shlex.quote(w) for w in words)


def check_run_dir(run_dir: Path) -> None:
    """Raises FlanJaxError when `run_dir` cannot become a folder: it, or the nearest part of its
    path that exists, is a file. Checked before the base model is loaded; nothing is created."""
    for part in (run_dir, *run_dir.parents):
        if part.exists():
            if not part.is_dir():
                raise FlanJaxError(f"main job: run folder {run_dir}: {part} is a file, not a folder")
            return


def run_main_job(out: str | None = None, gin_files: list[str] | None = None,
                 gin_bindings: list[str] | None = None) -> dict[str, Any]:
    """Run the whole job; returns {"run_dir", "summary"}."""
    from flan_jax.data.templates import flan_nl
    from flan_jax.data.mixing import mixtures
    from flan_jax.data.mixing.share_plot import plot_shares
    from flan_jax.eval.report import write_report
    from flan_jax.models import params_io
    from flan_jax.train import train as train_lib
    from flan_jax.train.lora_training import dense_params
    from flan_jax.train.gin_config import parse_gin

    started = time.perf_counter()
    phases_minutes: dict[str, float] = {}  # minutes per phase, for the report
    last_lap = [started]

    def lap(name: str) -> None:
        now = time.perf_counter()
        phases_minutes[name] = round((now - last_lap[0]) / 60, 2)
        last_lap[0] = now
    run_dir = Path(out or f"runs/main-{time.strftime('%Y%m%d-%H%M%S')}").absolute()

    # ---- config
    parse_gin(gin_files or [EXPERIMENT], list(gin_bindings or []))
    options = main_job_options()
    held_out = options["held_out_cluster"]
    if held_out not in flan_nl.CLUSTERS:
        raise FlanJaxError(f"main job: held-out cluster {held_out!r} is not a flan-nl cluster "
                           f"({', '.join(flan_nl.CLUSTERS)})")
    train_mixture = f"flan_nl_heldout_no_{held_out}"
    check_run_dir(run_dir)

    # ---- base: the pretrained checkpoint, and its tokenizer for every task
    with progress.phase("base"):
        ckpt = use_base(options["base"])
        config, base_params = params_io.load_checkpoint(ckpt)
        module = params_io.build_model(config)
        from flan_jax.data.tasks.registry import default_vocabulary

        vocabulary = default_vocabulary()
    lap("base")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FlanJaxError(f"main job: run folder {run_dir} cannot be created: {e.strerror}") from None
    print(f"flan_jax main job -> {run_dir}\n  base {options['base']} ({type(module).__name__}), "
          f"training mixture {train_mixture}, held-out cluster {held_out}", flush=True)
    phases = Phases(run_dir, job_settings(options))
    if phases.completed():
        print(f"  resuming: phases done {', '.join(phases.completed())} ({run_dir / 'phases'})", flush=True)

    def phase(name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The outputs recorded for phase `name`, else computed now and recorded (after the files
        the phase writes), with its minutes."""
        done = phases.done(name)
        if done is None:
            done = compute()
            host_malloc.release_free_memory()  # a tuned heap keeps the phase's freed memory otherwise
            lap(name)
            phases.record(name, done, minutes=phases_minutes[name])
        else:
            phases_minutes[name] = done.pop("minutes")  # as recorded by the process that ran it
            last_lap[0] = time.perf_counter()
        return done

    # ---- data: the training mixture (and its no-template twin) and the evaluation examples
    with progress.phase("data"):
        decls, _ = mixtures.load_files()
        leaves = mixtures.register_mixture(train_mixture, vocabulary=vocabulary)
        plot_shares(train_mixture, leaves, run_dir / "mixture.png")
        held_in = {c: flan_nl.cluster_datasets(c) for c in flan_nl.CLUSTERS if c != held_out}
        examples = eval_examples(held_in, options["eval_split"], options["held_in_examples_per_task"], vocabulary)
        examples.update(eval_examples({held_out: flan_nl.cluster_datasets(held_out)}, options["eval_split"],
                                      options["held_out_examples_per_task"], vocabulary))
    eval_kw = {"vocabulary": vocabulary, "lengths": options["eval_lengths"], "batch_size": options["eval_batch_size"]}
    correct: dict[str, Any] = {}
    lap("data")

    # ---- before (from here on XLA executables may go to the persistent cache)
    if options["compilation_cache"]:
        use_compilation_cache()
    def evaluate(params: Any, chosen: Mapping[str, Any], folder: str, **metadata: Any) -> dict[str, Any]:
        total = sum(len(rows) for by_source in chosen.values() for rows in by_source.values())
        with progress.phase(folder, total=total, unit="examples") as bar, compilations.counted() as compiled:
            c = score(module, params, chosen, bar=bar, **eval_kw)
        print(f"  {folder}: {len(compiled)} programs compiled ({sum(compiled):.1f} s; those in the persistent "
              "cache are loaded, not compiled)", flush=True)
        r = report(c, chosen, held_out_cluster=held_out, split=options["eval_split"], **metadata)
        write_report(r, run_dir / folder)
        return {"correct": c, "report": r, "compilations": len(compiled)}

    done = phase("eval_before", lambda: evaluate(base_params, examples, "eval_before", step=0))
    base_params = None  # not needed again: the tunings restore the base themselves
    correct["before"], before = done["correct"], done["report"]
    print(f"  before tuning: held-out {before['clusters'][held_out]['score']:.1f}", flush=True)

    # ---- tune
    def tune(mixture: str, name: str) -> tuple[Any, Any]:
        """(TrainResult without its state, tuned dense params) of a tuning from the base into
        run_dir/name. The state (params and AdamW's two moments, 3 GiB for the 270M base) is
        dropped here, so the control tuning does not run beside the first tuning's."""
        kwargs = {"mixture": mixture, "model": config, "model_dir": str(run_dir / name), "pretrained": str(ckpt)}
        print(f"  tuning on {mixture} -> {run_dir / name} (several minutes on CPU; "
              f"tensorboard --logdir {run_dir / name / 'tensorboard'} shows its progress)", flush=True)
        with progress.phase("tune" if name == "train" else f"{name}_tune"):
            result = train_lib.train(**kwargs)
        return dataclasses.replace(result, state=None), dense_params(result, run_dir / name)

    tuned: dict[str, Any] = {}  # the tuned params of the tuning that ran in this process

    def tune_phase(mixture: str, name: str) -> dict[str, Any]:
        result, tuned[name] = tune(mixture, name)
        resumed_at = result.step - len(result.losses)
        if resumed_at:
            print(f"  {name}: resumed at step {resumed_at} after a restart; its loss curve starts there "
                  f"(the earlier losses are in {run_dir / name / 'tensorboard'})", flush=True)
        return {"step": result.step, "losses": result.losses, "resumed_at": resumed_at}

    def tuned_params(mixture: str, name: str) -> Any:
        """This process's tuned params, or (the tuning completed before a restart) the final
        checkpoint's: train() finds nothing to train and returns its state."""
        return tuned.pop(name) if name in tuned else tune(mixture, name)[1]

    result = phase("tune", lambda: tune_phase(train_mixture, "train"))
    done = phase("eval_after", lambda: evaluate(tuned_params(train_mixture, "train"), examples, "eval_after",
                                                step=result["step"]))
    tuned.clear()
    correct["after"], after = done["correct"], done["report"]
    print(f"  after tuning: held-out {after['clusters'][held_out]['score']:.1f}", flush=True)
    curves = {"instructions": result["losses"]}

    # ---- control: the same tuning on the bare inputs (FLAN's "no template")
    control = None
    if options["control"]:
        control_mixture = f"flan_nl_no_template_heldout_no_{held_out}"
        mixtures.register_mixture(control_mixture, vocabulary=vocabulary)
        ctrl = phase("control_tune", lambda: tune_phase(control_mixture, "control"))
        done = phase("control_eval", lambda: evaluate(
            tuned_params(control_mixture, "control"), {held_out: examples[held_out]}, "eval_control",
            step=ctrl["step"], control="no template"))
        tuned.clear()
        correct["control"], control = done["correct"], done["report"]
        curves["no template (control)"] = ctrl["losses"]
        print(f"  control (no template): held-out {control['clusters'][held_out]['score']:.1f}", flush=True)

    # ---- summary
    rows = summarize(before, after, control, correct, held_out, sorted({leaf.cluster for leaf in leaves}))
    plot_losses(curves, run_dir / "loss.png")
    plot_clusters(rows, run_dir / "clusters_before_after.png")
    table = summary_table(rows)
    minutes = (time.perf_counter() - started) / 60
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
    n_held = before["clusters"][held_out]["num_examples"]
    text = (f"# flan_jax main job\n\nBase {options['base']}; instruction-tuned {result['step']} steps on "
            f"`{train_mixture}`; zero-shot rank classification on the {options['eval_split']} split "
            f"({n_held} held-out examples, every non-inverted template in turn). Intervals: 95% "
            f"bootstrap (examples resampled within tasks; changes paired). {minutes:.1f} minutes "
            f"({', '.join(f'{k} {v:.1f}' for k, v in phases_minutes.items())}), peak resident memory "
            f"{peak_gb:.1f} GiB.\n\n{table}\n\nTry the tuned model (one prompt per line):\n\n"
            f"    {try_command(run_dir, ckpt)}\n")
    tmp = run_dir / ".summary.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, run_dir / "summary.md")
    summary = {"base": options["base"], "held_out_cluster": held_out, "train_mixture": train_mixture,
               "steps": result["step"], "losses": result["losses"], "minutes": minutes,
               "phase_minutes": phases_minutes, "peak_rss_gib": peak_gb, "clusters": rows,
               "control_losses": curves.get("no template (control)")}
    write_json_atomically(run_dir / "summary.json", summary)  # last: a summary.json is a finished job
    print("\n" + table + "\n")
    print(f"run folder {run_dir}:\n  train/   control/   eval_before/   eval_after/   "
          f"eval_control/\n  loss.png  mixture.png  clusters_before_after.png  summary.md  summary.json\n"
          f"  [{minutes:.1f} min]\ntry the tuned model (one prompt per line):\n  {try_command(run_dir, ckpt)}")
    return {"run_dir": run_dir, "summary": summary}
