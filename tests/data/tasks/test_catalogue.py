"""The whole catalogue: sizes, lint, options rendering and task names for every dataset."""
import collections
import re

import pytest

from flan_jax.data.templates import flan2021
from flan_jax.data.tasks import registry as tasks
from flan_jax.data.tasks import catalogue
from flan_jax.data.templates.lint import TEMPLATES_PER_DATASET, lint_catalogue, lint_dataset
from flan_jax.data.templates.render import OPTIONS_HEADER, render

CATALOGUES = ("flan2021", "cot", "flan_mini", "flan_nl")
SEQIO_TASK_NAME = re.compile(r"^[\w\d\.\:_#]+$")  # seqio.dataset_providers' rule


def _all(collection):
    return catalogue.collection_datasets(collection)


def test_flan2021_has_62_datasets_in_the_12_paper_clusters():
    assert len(flan2021.CLUSTER_SIZES) == 12 and sum(flan2021.CLUSTER_SIZES.values()) == 62
    specs = flan2021.all_datasets()
    assert len(specs) == 62
    assert dict(collections.Counter(s.cluster for s in specs)) == flan2021.CLUSTER_SIZES


@pytest.mark.parametrize("cluster", flan2021.CLUSTERS)
def test_each_flan2021_cluster(cluster):
    specs = flan2021.cluster_datasets(cluster)
    assert len(specs) == flan2021.CLUSTER_SIZES[cluster]
    assert {s.cluster for s in specs} == {cluster}
    assert lint_catalogue(specs) == []
    assert all(len(s.templates) == TEMPLATES_PER_DATASET for s in specs)


@pytest.mark.parametrize("collection", CATALOGUES)
def test_lint_is_clean(collection):
    specs = _all(collection)
    assert specs
    assert lint_catalogue(specs) == []
    assert all(len(s.templates) == TEMPLATES_PER_DATASET for s in specs)


def test_local_sample_specs_name_only_their_fields():
    for spec in _all("local"):
        tasks.check_templates(spec, spec.templates)
        problems = [p for p in lint_dataset(spec) if "templates, needs" not in p]
        assert problems == [], spec.name


def _synthetic_fields(spec, options):
    fields = {name: f"<{name}>" for name in spec.fields}
    if spec.options_field is not None:
        fields[spec.options_field] = list(options)
    fields[spec.answer_field] = options[0] if options else "<answer>"
    return fields


def _options_of(spec):
    return spec.options if spec.options is not None else ("first choice", "second one", "3rd")


@pytest.mark.parametrize("collection", CATALOGUES)
def test_options_variant_shows_every_option_and_no_options_variant_none(collection):
    problems = []
    for spec in _all(collection):
        if not spec.has_options:
            continue
        options = _options_of(spec)
        fields = _synthetic_fields(spec, options)
        for templates in (spec.templates, spec.cot_templates):
            for i, t in enumerate(templates):
                shown, _ = render(spec, i, fields, with_options=True, templates=templates)
                hidden, _ = render(spec, i, fields, with_options=False, templates=templates)
                if t.inverted:
                    continue
                block = shown[shown.find(OPTIONS_HEADER):] if OPTIONS_HEADER in shown else ""
                listed = [line[2:] for line in block.split("\n") if line.startswith("- ")]
                if listed != list(options):
                    problems.append(f"{spec.name} template {i}: options block lists {listed}")
                if OPTIONS_HEADER in hidden:
                    problems.append(f"{spec.name} template {i}: no-options variant shows options")
    assert not problems, "\n".join(problems)


def test_task_names_are_valid_and_unique():
    names = catalogue.all_task_names()
    assert len(names) == len(set(names))
    bad = [n for n in names if not SEQIO_TASK_NAME.match(n)]
    assert bad == []
    for collection in CATALOGUES:
        for spec in _all(collection):
            for source in spec.sources:
                for variant in tasks.variants_for(spec):
                    assert f"{collection}.{source}:{variant}" in names
    flan = [n for n in names if n.startswith("flan2021.")]
    # 62 datasets, 66 sources (ANLI r1-r3, ARC easy/challenge, SQuAD v1/v2). With options:
    # zs_opt, zs_noopt, zs_opt_var, fs_opt, fs_noopt, 6 slot variants, 2 x-shot, eval = 14;
    # without: zs_noopt, fs_noopt, 3 slot, 1 x-shot, eval = 7; plus eval_t<i> per non-inverted
    # template.
    sources = [(s, spec) for spec in flan2021.all_datasets() for s in spec.sources]
    assert len(flan) == sum((14 if spec.has_options else 7)
                            + sum(not t.inverted for t in spec.templates) for _, spec in sources)
