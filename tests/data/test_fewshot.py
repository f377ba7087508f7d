"""Few-shot format, pruning and determinism (flan_jax.data.fewshot)."""
import hashlib
import json
import os
import random
import subprocess
import sys

from flan_jax.data import fewshot
from flan_jax.data.spec import DatasetSpec, ProceduralSource, Template

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


def test_format_matches_hand_written_string():
    inputs, targets, kept = fewshot.render_fewshot(SPEC, 0, EXAMPLE, EXEMPLARS, with_options=False)
    assert inputs == "Q: 2+2?\n4\n\nQ: 3+1?\n4\n\nQ: 1+1?"
    assert (targets, kept) == ("2", 2)


def test_options_are_shown_in_every_exemplar():
    inputs, _, _ = fewshot.render_fewshot(SPEC, 1, EXAMPLE, EXEMPLARS[:1], with_options=True)
    assert inputs == "Solve 2+2?\n\nOPTIONS:\n- 4\n- 2\n4\n\nSolve 1+1?\n\nOPTIONS:\n- 4\n- 2"


def test_pruning_drops_exemplars_until_short_enough():
    full = "Q: 2+2?\n4\n\nQ: 3+1?\n4\n\nQ: 1+1?"
    assert len(full) == 29
    cases = [(None, full, 2), (29, full, 2), (28, "Q: 2+2?\n4\n\nQ: 1+1?", 1),
             (18, "Q: 2+2?\n4\n\nQ: 1+1?", 1), (17, "Q: 1+1?", 0), (3, "Q: 1+1?", 0)]
    for max_chars, expected, kept in cases:
        got = fewshot.render_fewshot(SPEC, 0, EXAMPLE, EXEMPLARS, with_options=False,
                                     max_chars=max_chars)
        assert got[0] == expected and got[2] == kept, max_chars


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
from flan_jax.data import fewshot
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
