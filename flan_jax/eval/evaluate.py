"""Evaluate a model on every task of an evaluation mixture: FLAN's held-out-cluster measurement.

    report = evaluate(model, params, "flan_mini_heldout_mini_comparison_eval",
                      config=EvalConfig(split="validation", shots=0, max_examples=100))
    report["clusters"]["mini_comparison"]["score"]   # mean headline score of the cluster's tasks

Per task (a seqio task read directly, so its metadata features -- options, answer, cluster --
are kept; a seqio mixture would drop them):

* tasks whose examples carry answer options are rank-classified (`rank_classification`): the
  prediction is the option with the highest log-likelihood, the target the `answer` feature;
* other tasks are decoded (`decoding`), the output and the rendered target are postprocessed
  (CoT: the text after the last "So the answer is") and scored by the dataset's metric
  (`metrics.metric_fns_for`).

Templates (`EvalConfig.templates`): "all" (default) replaces each `<collection>.<source>:eval`
task by one `:eval_t<i>` task per non-inverted template i, so every template is scored;
"first" keeps the single `:eval` task (the first non-inverted template). Inverted templates are
never evaluated: their prompt states the answer.

Few-shot (`shots=K > 0`): the eval tasks are registered with `RenderConfig(num_shots=K)`: K
exemplars from the train split in the same template, chosen deterministically per example
(data.fewshot); a zero-shot variant named directly (`:zs_opt`) is evaluated through its
dataset's eval tasks. Exemplars are dropped, last first, until the prompt fits the inputs length
the evaluation uses (`EvalConfig.lengths["inputs"]`), so the example's own question is never
cut. A prompt that is longer than that length even with no exemplar (it would lose its end: the
question or its OPTIONS) is not scored: the task's entry counts it under `too_long`, and a task
with no prompt that fits is an error naming the task and the length.

The report is a plain dict (JSON-able): per task the metric scores, the headline number
(`metrics.HEADLINE`), the method, the template and a few sample predictions; `templates` the
per-template spread (`aggregate.template_spread`: mean/min/max per dataset = task source, and
per cluster); per cluster `score` = the mean over its datasets of their template means (with one
template per dataset: the mean over its tasks) plus `template_min`/`template_max`; `overall` the
mean over clusters. `report.write_report` renders it.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from flan_jax.data.features import vocab as vocab_lib
from flan_jax.data.templates.spec import DatasetSpec
from flan_jax import progress
from flan_jax.errors import FlanJaxError
from flan_jax.data.tasks import metrics
from flan_jax.eval import baselines, conventions, decoding, rank_classification
from flan_jax.eval.eval_tasks import EmptySplitError, resolve_tasks, task_examples

log = logging.getLogger("flan_jax.eval")
MODES = ("auto", "rank", "generate")
TEMPLATE_MODES = ("all", "first")
NUM_SAMPLES = 3  # predictions kept per task in the report


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how. `lengths`: input tokens and target/decode tokens per example."""

    split: str = "validation"
    shots: int = 0
    max_examples: int | None = None
    lengths: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: {"inputs": 256, "targets": 64})
    batch_size: int = 32
    mode: str = "auto"  # auto: rank classification where the task has options
    length_normalize: bool = False
    decode: decoding.DecodeConfig | None = None  # default: greedy up to lengths["targets"]
    # Skip (and list under "skipped") tasks whose split yields no example instead of failing:
    # for --mock runs, where random rows can all be dropped by a dataset's field mapping.
    skip_empty: bool = False
    templates: str = "all"  # "all": every non-inverted template; "first": the `eval` task only
    # Rank-classification scoring conventions (eval.conventions: "flan", "lm_eval"), every one
    # reported; the first gives the headline. mutual_info adds the prior-corrected acc_mutual_info.
    scoring: tuple[str, ...] = ("flan",)
    mutual_info: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "scoring", conventions.check_conventions(self.scoring))
        if self.mode not in MODES:
            raise FlanJaxError(f"eval mode {self.mode!r} is not one of {MODES}")
        if self.templates not in TEMPLATE_MODES:
            raise FlanJaxError(f"eval templates {self.templates!r} is not one of {TEMPLATE_MODES}")
        if self.shots < 0:
            raise FlanJaxError(f"shots must be >= 0, got {self.shots}")
        if self.max_examples is not None and self.max_examples < 1:
            raise FlanJaxError(f"max_examples must be >= 1, got {self.max_examples}")


# ----------------------------------------------------------------------------- one task


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _has_options(ex: Mapping[str, Any]) -> bool:
    return len(np.asarray(ex.get("options", []), dtype=object).reshape(-1)) > 0


def evaluate_examples(
    model: Any, params: Any, examples: Sequence[Mapping[str, Any]], *, vocabulary: Any,
    spec: DatasetSpec, task: str, config: EvalConfig, cot: bool = False, mesh: Any = None,
) -> dict[str, Any]:
    """Score one task's examples; returns its report entry (see the module docstring)."""
    if not examples:
        raise FlanJaxError(f"task {task!r}: no examples to evaluate (empty split?)")
    limit = int(config.lengths["inputs"])
    fitting = [e for e in examples if len(e["inputs"]) <= limit]
    too_long = len(examples) - len(fitting)
    if not fitting:
        longest = max(len(e["inputs"]) for e in examples)
        raise FlanJaxError(f"task {task!r}: all {len(examples)} prompts are longer than the inputs length "
                           f"{limit} (longest {longest} tokens); cutting them would lose their question: "
                           "raise lengths['inputs'] (--lengths)")
    if too_long:
        log.warning("%s: %d of %d prompts are longer than the inputs length %d and are not scored",
                    task, too_long, len(examples), limit)
    examples = fitting
    rank = config.mode == "rank" or (config.mode == "auto" and all(_has_options(e) for e in examples))
    inputs_text = [_text(e.get("inputs_pretokenized", "")) for e in examples]
    start = time.perf_counter()
    by_convention = None
    if rank:
        targets = [_text(e["answer"]) for e in examples]
        predictions, by_convention, truncated = rank_classification.accuracy_by_convention(
            model, params, examples, targets, vocabulary=vocabulary, lengths=config.lengths,
            scoring=config.scoring, mutual_info=config.mutual_info, length_normalize=config.length_normalize,
            batch_size=config.batch_size, mesh=mesh, where=f"task {task!r}, example")
        metric_fns = [metrics.accuracy] if spec.metric in ("accuracy", "exact_match") else metrics.metric_fns_for(spec)
        metric_name = "accuracy" if spec.metric in ("accuracy", "exact_match") else spec.metric
    else:
        decode_cfg = dataclasses.replace(
            config.decode or decoding.DecodeConfig(max_decode_length=config.lengths["targets"]),
            eos_id=vocab_lib.eos_id(vocabulary))  # the vocabulary's EOS, which training appended
        gen = decoding.generate(model, params, [e["inputs"] for e in examples], config=decode_cfg,
                                input_length=config.lengths["inputs"], batch_size=config.batch_size,
                                mesh=mesh)
        post = metrics.postprocessor_for(spec, cot)
        raw = [vocabulary.decode(ids) for ids in gen.tokens]
        predictions = [post(p, example=e) for p, e in zip(raw, examples)]
        targets = [post(_text(e["targets_pretokenized"]), example=e, is_target=True) for e in examples]
        truncated = gen.truncated_inputs
        metric_fns = metrics.metric_fns_for(spec)
        metric_name = spec.metric
    scores: dict[str, float] = {}
    for fn in metric_fns:
        scores.update({k: float(v) for k, v in fn(targets, predictions).items()})
    samples = [{"inputs": i, "target": t, "prediction": p}
               for i, t, p in list(zip(inputs_text, targets, predictions))[:NUM_SAMPLES]]
    template_ids = sorted({int(e.get("template_index", -1)) for e in examples})
    return {
        "task": task, "dataset": spec.name, "cluster": spec.cluster,
        "source": task.rpartition(":")[0], "variant": task.rpartition(":")[2],
        "template": template_ids[0] if len(template_ids) == 1 else None,
        "method": "rank_classification" if rank else "generation", "metric": metric_name,
        "num_examples": len(examples), "scores": scores,
        "mean_shots": float(np.mean([int(e.get("num_shots", 0)) for e in examples])),
        "headline": metrics.headline(metric_name, scores), "truncated": int(truncated),
        "too_long": too_long,
        "chance": _chance(examples) if rank else None, "scoring": by_convention,
        "baselines": _baselines(examples, targets, rank),
        "seconds": round(time.perf_counter() - start, 3), "samples": samples,
    }


def _baselines(examples: Sequence[Mapping[str, Any]], targets: Sequence[Any], rank: bool) -> dict[str, Any]:
    """Majority class (the most frequent gold answer of these examples) and, for rank
    classification, uniform chance (eval.baselines)."""
    majority = baselines.majority(targets)
    chance = baselines.uniform_chance([np.asarray(e["options"]).reshape(-1) for e in examples]) if rank else None
    return {"majority": majority["score"], "majority_answer": majority["answer"], "chance": chance}


def _chance(examples: Sequence[Mapping[str, Any]]) -> float:
    """Expected accuracy (x100) of picking an option uniformly at random."""
    return 100.0 * float(np.mean([1.0 / len(np.asarray(e["options"]).reshape(-1)) for e in examples]))


# ----------------------------------------------------------------------------- many tasks


def summarize(task_reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-template spread, per-cluster scores and the overall mean over clusters.

    Each task entry is one (dataset, template) score: the headline of task `<c>.<s>:<variant>`
    counts for dataset `<c>.<s>` under its template (an entry without one counts as its own
    template -1). `clusters[C]` keeps `score` and `num_tasks` and adds `num_datasets`,
    `template_min` and `template_max` (aggregate.template_spread).
    """
    from flan_jax.eval.aggregate import side_scores, template_spread  # noqa: PLC0415

    scores: dict[str, dict[int, float]] = {}
    cluster_of: dict[str, str] = {}
    num_tasks: dict[str, int] = {}
    for t in task_reports:
        dataset = t.get("source") or t["task"].rpartition(":")[0]
        template = t.get("template")
        template = -1 if template is None else int(template)
        if template in scores.setdefault(dataset, {}):
            raise FlanJaxError(f"task {t['task']!r}: dataset {dataset!r} template {template} is "
                               "scored twice (evaluate either :eval or its :eval_t<i> tasks)")
        scores[dataset][template] = float(t["headline"])
        cluster_of[dataset] = t["cluster"]
        num_tasks[t["cluster"]] = num_tasks.get(t["cluster"], 0) + 1
    spread = template_spread(scores, cluster_of)
    per_cluster = {
        c: {"score": s["mean"], "num_tasks": num_tasks[c], "num_datasets": s["num_datasets"],
            "template_min": s["min"], "template_max": s["max"]}
        for c, s in spread["clusters"].items()
    }
    overall = float(np.mean([c["score"] for c in per_cluster.values()])) if per_cluster else math.nan
    # beside each cluster score: its majority baseline and every convention's score, aggregated alike
    return {"clusters": per_cluster, "overall": overall, "templates": spread,
            "side_scores": side_scores(task_reports, cluster_of)}


def evaluate(
    model: Any,
    params: Any,
    mixture_or_tasks: str | Sequence[str],
    *,
    config: EvalConfig = EvalConfig(),
    vocabulary: Any = None,
    mesh: Any = None,
    metadata: Mapping[str, Any] | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Evaluate every task of an evaluation mixture (or task list); returns the report dict.
    `show_progress`: report the reading of the tasks and the examples scored on stderr
    (flan_jax/progress.py: a bar on a terminal, one line per phase otherwise)."""
    infos = resolve_tasks(mixture_or_tasks, config.shots, vocabulary, config.templates,
                          inputs_length=config.lengths["inputs"])
    reports, skipped, loaded = [], [], []
    quiet = None if show_progress else True
    with progress.phase("eval: reading tasks", total=len(infos), unit="tasks", quiet=quiet) as bar:
        for info in infos:  # every task read first, so the scoring phase knows its total
            try:
                loaded.append((info, *task_examples(info.name, config.split, config.max_examples)))
            except EmptySplitError as e:
                if not config.skip_empty:
                    raise
                log.warning("skipped: %s", e)
                skipped.append({"task": info.name, "reason": str(e)})
            bar.update(1)
    total = sum(len(examples) for _, examples, _ in loaded)
    with progress.phase("eval: scoring", total=total, unit="examples", quiet=quiet) as bar:
        for info, examples, task_vocab in loaded:
            entry = evaluate_examples(model, params, examples,
                                      vocabulary=task_vocab if vocabulary is None else vocabulary,
                                      spec=info.spec, task=info.name, config=config, cot=info.cot, mesh=mesh)
            entry["collection"] = info.collection
            log.info("%s: %s %.2f (%d examples, %s)", info.name, entry["metric"], entry["headline"],
                     entry["num_examples"], entry["method"])
            reports.append(entry)
            bar.update(len(examples))
    report = {
        "evaluation": mixture_or_tasks if isinstance(mixture_or_tasks, str) else list(mixture_or_tasks),
        "split": config.split, "shots": config.shots, "max_examples": config.max_examples,
        "mode": config.mode, "length_normalize": config.length_normalize,
        "scoring": list(config.scoring), "mutual_info": config.mutual_info,
        "templates_evaluated": config.templates,
        "lengths": dict(config.lengths), **dict(metadata or {}), "tasks": reports,
        "skipped": skipped,
    }
    report.update(summarize(reports))
    return report


def scalars(report: Mapping[str, Any]) -> dict[str, float]:
    """Flat {name: value} of a report for TensorBoard: overall, per cluster, per task."""
    out = {"overall": float(report["overall"])}
    for cluster, c in report["clusters"].items():
        out[f"cluster/{cluster}"] = float(c["score"])
        for key in ("template_min", "template_max"):
            if key in c:
                out[f"cluster/{cluster}/{key}"] = float(c[key])
    for t in report["tasks"]:
        out[f"task/{t['task']}/{t['metric']}"] = float(t["headline"])
    return out


def make_eval_hook(
    model: Any,
    mixture_or_tasks: str | Sequence[str],
    *,
    config: EvalConfig = EvalConfig(),
    every_steps: int = 0,
    out_dir: str | None = None,
    vocabulary: Any = None,
    mesh: Any = None,
) -> Callable[[Any, int], dict[str, float]]:
    """A trainer eval hook `(params, step) -> {name: value}` (train(eval_hooks=[...])).

    `model` is the flax module or its config (T5Config / DecoderConfig).

    The trainer calls hooks every `train.eval_every` steps and at the end and writes the returned
    scalars to TensorBoard under "eval/"; `every_steps` > 0 additionally skips steps that are
    not a multiple of it (returns {}). With `out_dir`, each evaluation also writes its report
    files under `out_dir/step_<step>/`. Tasks are registered on the first call.
    """
    if not hasattr(model, "apply"):  # a T5Config / DecoderConfig: build its module
        from flan_jax.models.params_io import build_model  # noqa: PLC0415

        model = build_model(model)

    def hook(params: Any, step: int) -> dict[str, float]:
        if every_steps and step % every_steps:
            return {}
        report = evaluate(model, params, mixture_or_tasks, config=config, vocabulary=vocabulary,
                          mesh=mesh, metadata={"step": int(step)})
        if out_dir:
            from flan_jax.eval.report import write_report  # noqa: PLC0415

            write_report(report, f"{out_dir}/step_{int(step)}")
        return scalars(report)

    return hook
