"""Every TFDS-backed dataset through seqio on `tfds.testing.mock_data`: the field mapping reads
the pinned builder's real feature keys and the rendered examples carry the right metadata.

Mock data is random text of the builder's feature spec, so this checks the plumbing (keys,
dtypes, nesting, splits), not the wording; tests/data/templates/test_flan2021*.py check hand-written rows.
One variant per source is enough for the mapping (the variants share the source and mapping).
"""
import pytest
import seqio
import tensorflow_datasets as tfds

from flan_jax.data.templates import flan2021
from flan_jax.data.tasks import registry as tasks
from flan_jax.data.tasks import catalogue
from flan_jax.data.templates.render import render

VOCAB = seqio.ByteVocabulary()
MORE_EXAMPLES = 32
# Plain-integer labels (not tfds ClassLabel): the mock draws 0..254, so rows almost never map.
# For these the raw mock row gets a valid label before the mapping runs (see below); fix_punct
# drops text without punctuation (as FLAN filters it), and mock text has none: it gets a period.
MOCK_FIXES = {
    "sentiment140": lambda raw: dict(raw, polarity=4),
    "wsc273": lambda raw: dict(raw, label=1),
    "fix_punct": lambda raw: dict(raw, en=raw["en"] + b"."),
}
GROUPS = [("flan2021", c) for c in flan2021.CLUSTERS] + [("cot", None)]


def _specs(collection, cluster):
    if collection == "flan2021":
        return flan2021.cluster_datasets(cluster)
    return catalogue.collection_datasets(collection)


def _text(x):
    return x.decode("utf-8")


def _read(name, split, num_examples):
    with tfds.testing.mock_data(num_examples=num_examples,
                                policy=tfds.testing.MockPolicy.USE_CODE):
        task = seqio.get_mixture_or_task(name)
        dataset = task.get_dataset(None, split=split, shuffle=False, try_in_mem_cache=False,
                                   use_cached=False)
        return list(dataset.take(2).as_numpy_iterator())


def _check_with_valid_label(spec, name, split, templates, problems) -> int:
    fix = MOCK_FIXES[spec.name]
    with tfds.testing.mock_data(num_examples=2, policy=tfds.testing.MockPolicy.USE_CODE):
        source = seqio.get_mixture_or_task(name).source
        raws = list(source.get_dataset(split=split, shuffle=False).as_numpy_iterator())
    for raw in raws:
        fields = tasks.raw_to_fields(spec, fix(dict(raw)))
        if fields is None:
            problems.append(f"{name}: fixed-up mock row was dropped")
            continue
        for i in range(len(templates)):
            inputs, targets = render(spec, i, fields, with_options=True, templates=templates)
            if not inputs.strip() or not targets.strip():
                problems.append(f"{name}: template {i} renders empty text")
    return len(raws)


@pytest.mark.slow
@pytest.mark.parametrize("collection,cluster", GROUPS, ids=[c or k for k, c in GROUPS])
def test_tfds_datasets_render_through_seqio(collection, cluster):
    problems, checked = [], 0
    for spec in _specs(collection, cluster):
        if not spec.tfds_backed:
            continue
        variant = "zs_opt" if spec.has_options else "zs_noopt"
        names = tasks.register_dataset_tasks(
            spec, VOCAB, collection=collection, variants=[variant],
            use_cot_templates=collection == "cot", config=tasks.RenderConfig(seed=3))
        assert names == [f"{collection}.{s}:{variant}" for s in spec.sources]
        templates = spec.cot_templates if collection == "cot" else spec.templates
        for name, source in zip(names, spec.sources.values()):
            split = next(iter(source.splits))
            where = f"{name} [{split}]"
            # Random mock labels can fall outside a dataset's label set (the mapping then drops
            # the row, as it should); a bigger mock draw then finds rows that map.
            if spec.name in MOCK_FIXES:
                checked += _check_with_valid_label(spec, name, split, templates, problems)
                continue
            examples = _read(name, split, 2) or _read(name, split, MORE_EXAMPLES)
            if not examples:
                problems.append(f"{where}: all {MORE_EXAMPLES} mock examples were dropped")
            for ex in examples:
                checked += 1
                if not _text(ex["inputs_pretokenized"]).strip():
                    problems.append(f"{where}: empty inputs")
                if not _text(ex["targets_pretokenized"]).strip():
                    problems.append(f"{where}: empty targets")
                if ex["targets"][-1] != 1 or len(ex["inputs"]) == 0:
                    problems.append(f"{where}: tokens {ex['inputs'][:5]} / {ex['targets'][-3:]}")
                meta = (_text(ex["task"]), _text(ex["cluster"]), _text(ex["variant"]))
                if meta != (name, spec.cluster, variant):
                    problems.append(f"{where}: metadata {meta}")
                if not 0 <= ex["template_index"] < len(templates):
                    problems.append(f"{where}: template index {ex['template_index']}")
                options = [_text(o) for o in ex["options"]]
                if spec.options is not None and options != list(spec.options):
                    problems.append(f"{where}: options {options}")
                # fixed options only: a mock row's answer need not be among its own options
                if spec.options is not None and _text(ex["answer"]) not in options:
                    problems.append(f"{where}: answer {ex['answer']!r} not among {options}")
                if spec.has_options != bool(options):
                    problems.append(f"{where}: options {options} (dataset has options: {spec.has_options})")
    assert not problems, "\n".join(problems)
    assert checked > 0 or collection == "cot"
