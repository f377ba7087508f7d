"""Few-shot format, pruning and determinism (flan_jax.data.templates.fewshot)."""
import dataclasses
import hashlib
import json
import os
import random
import subprocess
import sys

from flan_jax.data.templates import fewshot
from flan_jax.data.templates.spec import DatasetSpec, FewShotTemplate, ProceduralSource, Template

SPEC = DatasetSpec(
    name="tiny_math",
    cluster="test",
    sources={"tiny_math": ProceduralSource(lambda seed, n: [], {"train": 0}, {"train": 0})},
    to_fields=dict,
    fields=("q", "a"),
    templates=(Template("Q: {q}{options_}", "{a}"), Template("Solve {q}{options_}", "{a}")),
    answer_field="a",
    options=("4", "2"),
)
EXEMPLARS = [{"q": "2+2?", "a": "4"}, {"q": "3+1?", "a": "4"}]
EXAMPLE = {"q": "1+1?", "a": "2"}


SLOT = FewShotTemplate("{q}{options_}", "{a}", "Q: ", "A: ", "\n", "\n\n")
PLAIN = FewShotTemplate("{q}{options_}", "{a}", "", "", "\n\n", "\n\n\n")
PAIRS = [("2+2?", "4"), ("3+1?", "4")]


def test_slot_format_matches_hand_written_string():
    inputs, kept = fewshot.build_slot(SLOT, PAIRS, "1+1?")
    assert inputs == "Q: 2+2?\nA: 4\n\nQ: 3+1?\nA: 4\n\nQ: 1+1?\nA:"
    assert kept == 2
    # a targets prefix ending in a newline is stripped whole at the end (seqio's rstrip())
    question = FewShotTemplate("{q}", "{a}", "Question:\n", "Answer:\n", "\n\n", "\n\n\n")
    assert fewshot.build_slot(question, PAIRS[:1], "1+1?") == (
        "Question:\n2+2?\n\nAnswer:\n4\n\n\nQuestion:\n1+1?\n\nAnswer:", 1)


def test_mix_format_each_exemplar_in_its_own_template():
    inputs, kept = fewshot.build_mix(SLOT, [(PLAIN, "2+2?", "4"), (SLOT, "3+1?", "4")], "1+1?", "\n")
    assert inputs == "2+2?\n\n4\nQ: 3+1?\nA: 4\nQ: 1+1?\nA:"
    assert kept == 2
    # the prompt keeps a targets prefix's newline in the mix (only spaces are stripped)
    question = FewShotTemplate("{q}", "{a}", "Question:\n", "Answer:\n", "\n\n", "\n\n\n")
    assert fewshot.build_mix(question, [], "1+1?", "\n") == ("Question:\n1+1?\n\nAnswer:\n", 0)


def test_x_shot_keeps_only_exemplars_in_the_example_template_and_strips_targets():
    shots = [(PLAIN, "5+5?", "10"), (SLOT, "2+2?", "4"), (PLAIN, "6+6?", "12"), (SLOT, "3+1?", " 4 ")]
    inputs, targets, kept = fewshot.build_x(SLOT, shots, "1+1?", "2 ")
    assert inputs == "Q: 2+2?\nA: 4\n\nQ: 3+1?\nA:  4 \n\nQ: 1+1?\nA:"
    assert (targets, kept) == ("2", 2)


def test_pruning_counts_tokens_of_exemplars_plus_prompt():
    full = "Q: 2+2?\nA: 4\n\nQ: 3+1?\nA: 4\n\nQ: 1+1?\nA:"
    assert len(full) == 38  # blocks of 14 + 14 characters, prompt of 10
    one = "Q: 2+2?\nA: 4\n\nQ: 1+1?\nA:"
    for budget, expected, kept in [(None, full, 2), (38, full, 2), (37, one, 1), (24, one, 1),
                                   (23, "Q: 1+1?\nA:", 0), (3, "Q: 1+1?\nA:", 0)]:
        assert fewshot.build_slot(SLOT, PAIRS, "1+1?", max_tokens=budget) == (expected, kept), budget
    words = lambda text: len(text.split())  # noqa: E731  a stand-in tokenizer: 4 + 4, prompt 3
    assert fewshot.build_slot(SLOT, PAIRS, "1+1?", max_tokens=10, count=words)[1] == 1
    assert fewshot.prune(["aaaa", "bb", "c"], "dd", 8, len) == ["aaaa", "bb"]


def test_derived_few_shot_templates_frame_zero_shot_ones():
    spec = dataclasses.replace(SPEC, templates=SPEC.templates + (
        Template("Write a sum equal to {a}.", "{q}", inverted=True),) * 10)
    fs = fewshot.fewshot_templates(spec)
    assert len(fs) == 12
    assert (fs[0].inputs, fs[0].targets, fs[0].inputs_prefix, fs[0].x_y_delimiter) == (
        "Q: {q}{options_}", "{a}", "", "\n")
    assert (fs[1].inputs_prefix, fs[1].targets_prefix, fs[1].example_separator) == ("Q: ", "A: ", "\n\n")
    assert (fs[10].inputs_prefix, fs[10].x_y_delimiter) == ("", "\n")  # formats repeat after 10
    assert fs[2].inverted and not fs[2].in_template_mix and fs[0].in_template_mix
    own = (FewShotTemplate("{q}", "{a}", "In: ", "Out: ", "\n", "\n"),)
    assert fewshot.fewshot_templates(dataclasses.replace(SPEC, fewshot_templates=own)) == own


def test_formats_are_flan_v2_most_frequent_framings():
    # Counted by hand from flan/v2/templates.py FEWSHOT_PATTERNS over the FLAN 2021 datasets:
    # the top two framings are ('', '', '\n', '\n\n') (26 uses) and ('Q: ', 'A: ', '\n', '\n\n') (21).
    assert fewshot.FEWSHOT_FORMATS[:2] == (("", "", "\n", "\n\n"), ("Q: ", "A: ", "\n", "\n\n"))
    assert len(set(fewshot.FEWSHOT_FORMATS)) == 10
    assert fewshot.MIX_SEPARATORS == ("\n", "\n\n", "\n\n\n") and fewshot.FEW_SHOT_MAX_TOKENS == 1920


def test_example_key_is_sha256_of_sorted_json():
    fields = {"b": 1, "a": "é"}
    expected = hashlib.sha256('{"a": "é", "b": 1}'.encode("utf-8")).hexdigest()
    assert fewshot.example_key(fields) == expected
    assert fewshot.example_key({"a": "é", "b": 1}) == expected


def test_stable_int_is_independent_sha256():
    digest = hashlib.sha256("template\x1ftask\x1f3\x1fkey".encode()).digest()
    assert fewshot.stable_int("template", "task", 3, "key") == int.from_bytes(digest[:8], "big")


def _pool(n):
    items = [{"q": f"{i}+1?", "a": str(i + 1)} for i in range(n)]
    return [(fewshot.example_key(x), x) for x in items]


def test_exemplar_is_never_the_example_and_pool_order_does_not_matter():
    pool = _pool(12)
    pool += pool[:3]  # exact duplicates in the pool count once
    for key, item in pool:
        chosen = fewshot.choose_exemplars("t", 0, key, pool, 5)
        assert item not in chosen
        assert len(chosen) == 5 and len({json.dumps(c) for c in chosen}) == 5
        shuffled = list(pool)
        random.Random(7).shuffle(shuffled)
        assert fewshot.choose_exemplars("t", 0, key, shuffled, 5) == chosen
    only_self = _pool(1)
    assert fewshot.choose_exemplars("t", 0, only_self[0][0], only_self, 3) == []


def test_template_choice_uses_every_template_and_depends_on_seed():
    keys = [fewshot.example_key({"i": i}) for i in range(300)]
    assert {fewshot.choose_template("t", 0, k, 10) for k in keys} == set(range(10))
    a = [fewshot.choose_template("t", 0, k, 10) for k in keys]
    b = [fewshot.choose_template("t", 1, k, 10) for k in keys]
    assert a != b


_CHILD = """
import json
from flan_jax.data.templates import fewshot
pool = [(fewshot.example_key({"q": str(i)}), {"q": str(i)}) for i in range(20)]
out = []
for key, _ in pool:
    out.append([fewshot.choose_template("flan2021.rte:zs_opt", 0, key, 10),
                fewshot.choose_exemplars("flan2021.rte:fs_opt", 0, key, pool, 3)])
print(json.dumps(out))
"""


def test_choices_are_identical_across_processes_with_different_hash_seeds():
    outputs = []
    for hash_seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        result = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                                text=True, check=True)
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    # and a set built with hash() in each child would have differed: sanity that seeds took effect
    probe = "print(hash('flan'))"
    hashes = {subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONHASHSEED=s)).stdout for s in ("1", "12345")}
    assert len(hashes) == 2
