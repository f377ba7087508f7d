"""Which tasks an evaluation runs, registered and ready, and their examples.

    resolve_tasks("flan_mini_heldout_mini_comparison_eval", templates="all")
    -> [TaskInfo("flan_mini.mini_larger:eval_t0", spec, "flan_mini", cot=False), ...]
    task_examples("flan_mini.mini_larger:eval_t0", "validation", 20) -> (examples, vocabulary)

A name with ':' is one task, anything else a mixture (mixtures/*.toml). An `<collection>.<source>:eval`
task stands for every non-inverted template (`templates="all"`) or the first; with shots > 0 a
zero-shot variant is evaluated few-shot (`:eval`), its prompts pruned to the evaluation's inputs
length (flan_jax/eval/evaluate.py describes the whole evaluation).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from flan_jax.data.templates.spec import DatasetSpec
from flan_jax.errors import FlanJaxError


class EmptySplitError(FlanJaxError):
    """A task split that yields no example (nothing to evaluate)."""


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    name: str
    spec: DatasetSpec
    collection: str
    cot: bool

    @property
    def dataset(self) -> str:
        """The aggregation unit: `<collection>.<source>` (ANLI's rounds count separately)."""
        return self.name.rpartition(":")[0]

def _spec_of(task: str) -> tuple[DatasetSpec, str]:
    from flan_jax.data.tasks import catalogue

    collection, _, rest = task.partition(".")
    source = rest.partition(":")[0]
    if collection in catalogue.COLLECTIONS and collection != "local":
        for spec in catalogue.collection_datasets(collection):
            if source in spec.sources:
                return spec, collection
    raise FlanJaxError(f"task {task!r}: not a catalogue task (<collection>.<source>:<variant> with "
                       f"collection in {catalogue.COLLECTIONS[:-1]}); cannot tell its metric")


def _eval_names(task: str, spec: DatasetSpec, collection: str, shots: int, templates: str
                ) -> list[str]:
    """The eval task names `task` stands for (see the module docstring)."""
    from flan_jax.data.tasks import registry as tasks_lib  # noqa: PLC0415
    from flan_jax.data.tasks import catalogue  # noqa: PLC0415

    base, _, variant = task.rpartition(":")
    if variant.startswith("zs_") and shots:
        variant = "eval"
    if variant == "eval" and templates == "all":
        return [f"{base}:{v}" for v in tasks_lib.eval_variants(catalogue.task_templates(spec, collection))]
    return [f"{base}:{variant}"]


def resolve_tasks(mixture_or_tasks: str | Sequence[str], shots: int = 0, vocabulary: Any = None,
                  templates: str = "first", inputs_length: int | None = None) -> list[TaskInfo]:
    """Task names of a mixture (mixtures/*.toml) or an explicit list, registered and ready.

    A single name containing ':' is one task; otherwise it is a mixture name. Eval tasks are
    expanded per template (`templates="all"`) and registered with `num_shots=shots`, their
    few-shot prompts pruned to fit `inputs_length` tokens (the evaluation's inputs length;
    None: FLAN's 1920-token budget only).
    """
    from flan_jax.data.mixing import mixtures  # noqa: PLC0415
    from flan_jax.data.tasks import registry as tasks_lib  # noqa: PLC0415
    from flan_jax.data.tasks import catalogue  # noqa: PLC0415

    if isinstance(mixture_or_tasks, str):
        if ":" in mixture_or_tasks:
            names = [mixture_or_tasks]
        else:
            names = [leaf.task for leaf in mixtures.register_mixture(mixture_or_tasks, vocabulary=vocabulary)]
    else:
        names = list(mixture_or_tasks)
    if not names:
        raise FlanJaxError("evaluate: no tasks given")
    out = []
    for given in sorted(dict.fromkeys(names)):
        spec, collection = _spec_of(given)
        cot = collection == "cot" and bool(spec.cot_templates)
        for name in _eval_names(given, spec, collection, shots, templates):
            variant = name.rpartition(":")[2]
            if variant.startswith("eval"):
                # registered explicitly (not ensure_task): a task registered earlier with another
                # number of shots is re-registered with this one
                known = tasks_lib.variants_for(spec, catalogue.task_templates(spec, collection))
                if variant not in known:
                    raise tasks_lib.unknown("variant", variant, known)
                tasks_lib.register_dataset_tasks(
                    spec, vocabulary, collection=collection, variants=[variant],
                    config=tasks_lib.fitted_config(dataclasses.replace(
                        tasks_lib.default_render_config(), num_shots=shots or None), inputs_length),
                    use_cot_templates=cot)
            else:
                catalogue.ensure_task(name, vocabulary)
            out.append(TaskInfo(name, spec, collection, cot))
    return out


def task_examples(task: str, split: str, max_examples: int | None) -> tuple[list[dict], Any]:
    """(the first `max_examples` examples of a task split, unshuffled; the task's vocabulary)."""
    import seqio  # noqa: PLC0415

    provider = seqio.get_mixture_or_task(task)
    if split not in provider.splits:
        raise FlanJaxError(f"task {task!r} has no split {split!r} (splits: {', '.join(provider.splits)})")
    ds = provider.get_dataset(None, split=split, shuffle=False, use_cached=False,
                              try_in_mem_cache=False)
    if max_examples:
        ds = ds.take(max_examples)
    examples = list(ds.as_numpy_iterator())
    if not examples:
        raise EmptySplitError(f"task {task!r}, split {split!r}: no examples (empty split)")
    return examples, provider.output_features["targets"].vocabulary
