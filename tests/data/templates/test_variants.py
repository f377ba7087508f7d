"""Each variant's rendering in pure Python (flan_jax.data.templates.variants), and the whole catalogue's
eval variants: no inverted template ever reaches evaluation, whatever the number of shots."""
import hashlib

import pytest

from flan_jax.data.templates import fewshot, render
from flan_jax.data.tasks import registry as tasks
from flan_jax.data.tasks import catalogue
from flan_jax.data.templates.spec import DatasetSpec, ProceduralSource, Template
from flan_jax.data.templates.variants import ExampleRenderer, RenderConfig

SPEC = DatasetSpec(
    name="tiny",
    cluster="toy",
    sources={"tiny": ProceduralSource(lambda seed, n: [], {"train": 0}, {"train": 0})},
    to_fields=dict,
    fields=("q", "answer"),
    templates=(
        Template("Ask something whose answer is {answer}.", "{q}", inverted=True),
        Template("Question: {q}{options_}", "{answer}"),
        Template("{q} Pick.{options_}", "{answer}"),
    ),
    options=("yes", "no"),
)
ROWS = [{"q": f"Is {i} odd?", "answer": "yes" if i % 2 else "no"} for i in range(60)]
POOL = [(fewshot.example_key(r), r) for r in ROWS]


def _renderer(variant, **config):
    templates = tuple(SPEC.templates)
    return ExampleRenderer(SPEC, f"t.tiny:{variant}", variant, templates, RenderConfig(**config),
                           len, fewshot.fewshot_templates(SPEC))


def _sha_int(*parts):
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def test_template_mix_draws_only_mix_templates_with_one_separator_per_task():
    r = _renderer("fs_noopt")
    sep = ("\n", "\n\n", "\n\n\n")[_sha_int("separator", "t.tiny:fs_noopt", 0) % 3]
    fs = fewshot.fewshot_templates(SPEC)  # slot 1 ("Q: ", "A: ", "\n"), slot 2 ("Q: ", "A: ", "\n\n")
    for row in ROWS[:20]:
        out = r(row, POOL)
        assert out["template_index"] in (1, 2) and out["num_shots"] == 5  # 0 is inverted
        chosen = fewshot.choose_exemplars("t.tiny:fs_noopt", 0, fewshot.example_key(row), POOL, 5)
        expected = ""
        for ex in chosen:
            i = (1, 2)[_sha_int("template", "t.tiny:fs_noopt", 0, fewshot.example_key(ex)) % 2]
            body = ("Question: " if i == 1 else "") + ex["q"] + ("" if i == 1 else " Pick.")
            expected += "Q: " + body + fs[i].x_y_delimiter + "A: " + ex["answer"] + sep
        i = out["template_index"]
        own = ("Question: " if i == 1 else "") + row["q"] + ("" if i == 1 else " Pick.")
        assert out["inputs"] == expected + "Q: " + own + fs[i].x_y_delimiter + "A:"
        assert out["targets"] == row["answer"]


def test_x_shot_keeps_candidates_drawn_in_the_example_template():
    r = _renderer("fs_noopt_x")
    counts = []
    for row in ROWS:
        out = r(row, POOL)
        key = fewshot.example_key(row)
        own = _sha_int("template", "t.tiny:fs_noopt_x", 0, key) % 3
        same = [ex for ex in fewshot.choose_exemplars("t.tiny:fs_noopt_x", 0, key, POOL, 25)
                if _sha_int("template", "t.tiny:fs_noopt_x", 0, fewshot.example_key(ex)) % 3 == own]
        if not same:
            assert out is None  # no exemplar left: dropped, as FLAN filters it
            continue
        assert out["template_index"] == own and out["num_shots"] == len(same)
        counts.append(len(same))
    assert 6 <= sum(counts) / len(counts) <= 10.5  # 25 candidates over 3 templates: ~8.3


def test_slot_variants_use_their_template_and_shot_count():
    for slot, shots in ((0, 5), (1, 2), (2, 1)):
        out = _renderer(f"fs_opt_t{slot}")(ROWS[0], POOL)
        assert out["template_index"] == slot and out["num_shots"] == shots
        assert out["inputs"].count("OPTIONS:") == (shots + 1 if slot else 0)  # 0 has no block


def test_varied_options_are_deterministic_per_example_and_relabel_numbered_answers():
    r = _renderer("zs_opt_var")
    headers, relabelled = set(), 0
    for row in ROWS:
        out = r(row)
        assert out == r(dict(reversed(list(row.items()))))  # content, not key order or position
        n = _sha_int("options_style", "t.tiny:zs_opt_var", 0, fewshot.example_key(row))
        h, m = len(render.OPTION_HEADERS), len(render.OPTION_MARKERS)
        header, marker, ending = n % h, (n // h) % m, (n // (h * m)) % 3
        items = render.OPTION_MARKERS[marker][:2]
        block = "\n\n" + render.OPTION_HEADERS[header] + "".join(
            f"{it}{o}{render.OPTION_ENDINGS[ending]}" for it, o in zip(items, ("yes", "no")))
        headers.add(header)
        if out["template_index"] != 0:
            assert block in out["inputs"]
        if items[0] != items[1]:  # numbered: the answer becomes the stripped marker
            relabelled += 1
            label = items[("yes", "no").index(row["answer"])].strip()
            assert out["answer"] == label and out["options"] == [i.strip() for i in items]
            if out["template_index"] != 0:
                assert out["targets"] == label
        else:
            assert out["answer"] == row["answer"] and out["options"] == ["yes", "no"]
    assert len(headers) >= 8 and 0 < relabelled < len(ROWS)


def test_styled_options_worked_example():
    marker = render.OPTION_MARKERS.index(tuple(f"\n({c}). " for c in "abcdefghijklmnopqrstuvwxyz"))
    got = render.format_options_styled(("yes", "no"), "no", render.OptionsStyle(4, marker, 1))
    assert got == ("\n\nPick one:\n(a). yes;\n(b). no;", "(b).", ("(a).", "(b)."))
    with pytest.raises(render.TemplateError, match="27 options"):
        render.format_options_styled([str(i) for i in range(27)], None, render.OptionsStyle(0, 0, 0))


def test_eval_with_shots_keeps_its_template_and_every_example():
    for variant, index in (("eval", 1), ("eval_t1", 1), ("eval_t2", 2)):
        r = _renderer(variant, num_shots=3)
        for row in ROWS[:10]:
            out = r(row, POOL)
            assert out["template_index"] == index and out["num_shots"] == 3
            assert out["targets"] == row["answer"]
        tight = _renderer(variant, num_shots=3, max_input_tokens=5)(ROWS[0], POOL)
        assert tight is not None and tight["num_shots"] == 0
        assert tight["inputs"] == _renderer(variant)(ROWS[0])["inputs"]  # the zero-shot prompt
        framed = _renderer(variant, num_shots=1)(ROWS[0], POOL)["inputs"]
        (exemplar,) = fewshot.choose_exemplars(f"t.tiny:{variant}", 0, fewshot.example_key(ROWS[0]),
                                               POOL, 1)
        prefix = "Question: " if index == 1 else ""
        suffix = "\n\nOPTIONS:\n- yes\n- no" if index == 1 else " Pick.\n\nOPTIONS:\n- yes\n- no"
        assert framed == (f"{prefix}{exemplar['q']}{suffix}\n{exemplar['answer']}\n\n"
                          f"{prefix}{ROWS[0]['q']}{suffix}\n")


def _synthetic_fields(spec):
    fields = {f: f"<{f}>" for f in spec.fields}
    if spec.options_field:
        fields[spec.options_field] = ["<first>", "<second>"]
    options = list(spec.options or fields.get(spec.options_field) or [])
    if options:
        fields[spec.answer_field] = options[-1]
    return fields, options


@pytest.mark.parametrize("collection", ["flan2021", "cot", "flan_mini", "local"])
def test_no_inverted_template_in_any_eval_variant_of_the_catalogue(collection):
    checked = 0
    for spec in catalogue.collection_datasets(collection):
        templates = catalogue.task_templates(spec, collection)
        fields, options = _synthetic_fields(spec)
        pool = [(fewshot.example_key({**fields, "n": i}), {**fields, "n": i}) for i in range(4)]
        evals = [v for v in tasks.variants_for(spec, templates) if v.startswith("eval")]
        assert evals[0] == "eval" and len(evals) == 1 + sum(not t.inverted for t in templates)
        for variant in evals:
            for shots in (None, 1, 3):
                r = ExampleRenderer(spec, f"{collection}.{spec.name}:{variant}", variant,
                                    templates, RenderConfig(num_shots=shots))
                for n in range(3):  # different content keys
                    out = r({**fields, "n": n}, pool)
                    assert not templates[out["template_index"]].inverted, (spec.name, variant)
                    if options:  # rank classification scores the options against `answer`
                        assert out["answer"] == options[-1]
                        assert out["targets"].endswith(options[-1]), (spec.name, variant)
                    checked += 1
    assert checked > 0


def test_rte_few_shot_templates_are_its_own_with_flan_v2_framings():
    from flan_jax.data.templates import flan2021

    rte = next(s for s in flan2021.cluster_datasets("nli") if s.name == "rte")
    fs = fewshot.fewshot_templates(rte)
    assert fs == rte.fewshot_templates and len(fs) == 10
    assert {t.inputs for t in fs}.isdisjoint({t.inputs for t in rte.templates})
    # flan/v2/templates.py FEWSHOT_PATTERNS["rte"], slots 0, 3 and 4 (read by hand)
    assert (fs[0].inputs_prefix, fs[0].targets_prefix, fs[0].x_y_delimiter, fs[0].example_separator,
            fs[0].in_template_mix) == ("Problem: ", "A: ", "\n", "\n\n", False)
    assert (fs[3].inputs_prefix, fs[3].targets_prefix, fs[3].x_y_delimiter, fs[3].example_separator) == (
        "Question: ", "Answer: ", "\n", "\n")
    assert fs[4].inverted and not fs[4].in_template_mix and fs[4].x_y_delimiter == "\n****\n"
    fields = {"premise": "A cat sat.", "hypothesis": "An animal sat.", "answer": "yes"}
    got = fewshot.build_slot(fs[1], [render.render(rte, 1, fields, with_options=False, templates=fs)],
                             "Dogs bark.\nCats bark.")
    assert got == ("Q: A cat sat.\nAn animal sat.\n\nA: yes\n\n\nQ: Dogs bark.\nCats bark.\n\nA:", 1)
