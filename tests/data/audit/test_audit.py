"""audit: planted duplicates, near-duplicates and contamination are found, and nothing else."""
import json
import subprocess
import sys

import numpy as np
import pytest

from flan_jax.data.audit import findings as audit

VOCAB = [f"w{i}" for i in range(5000)]


def _sentence(rng, n=40):
    return " ".join(rng.choice(VOCAB, size=n))


def _examples(task, split, n, seed):
    rng = np.random.default_rng(seed)
    return [audit.AuditExample(task, split, i, "Answer this: " + _sentence(rng), _sentence(rng, 5))
            for i in range(n)]


def _planted():
    a, b = _examples("a", "train", 60, 1), _examples("b", "train", 60, 2)
    ev = _examples("e", "validation", 30, 3)
    # exact duplicate across tasks (case and spacing differ), near-duplicate within a task,
    # an eval example copied into training
    b[10] = audit.AuditExample("b", "train", 10, a[3].inputs.upper().replace(" ", "  "), a[3].targets)
    words = a[5].inputs.split()
    words[20] = "changed"
    a[40] = audit.AuditExample("a", "train", 40, " ".join(words), a[5].targets)
    b[33] = audit.AuditExample("b", "train", 33, ev[7].inputs, ev[7].targets)
    return a + b, ev


def test_every_planted_case_and_nothing_else():
    train, ev = _planted()
    report = audit.audit(train, ev)
    assert report["exact_duplicates"] == [["a/train/3", "b/train/10"]]
    assert [(p["a"], p["b"]) for p in report["near_duplicates"]] == [("a/train/5", "a/train/40")]
    # 47 words (2 template, 40 input, 5 target) -> 45 shingles; the changed word is in 3 of them,
    # so the pair shares 42 of 48 distinct shingles
    assert report["near_duplicates"][0]["jaccard"] == pytest.approx(42 / 48, abs=1e-4)
    assert [(c["train_task"], c["eval_task"], c["pairs"]) for c in report["contamination"]] == [
        ("b", "e", [("b/train/33", "e/validation/7")])]
    assert report["empty_targets"] == [] and report["length_outliers"] == []
    assert report["flagged"] == ["a/train/40", "b/train/10", "b/train/33"]


def test_template_boilerplate_is_not_contamination():
    # a 14-word instruction shared by every example is boilerplate, not overlap
    long = "please read the following text carefully and then answer the question that comes after it"
    train = [audit.AuditExample("t", "train", i, f"{long} {x.inputs}", x.targets)
             for i, x in enumerate(_examples("t", "train", 30, 5))]
    ev = [audit.AuditExample("e", "validation", i, f"{long} {x.inputs}", x.targets)
          for i, x in enumerate(_examples("e", "validation", 5, 6))]
    assert audit.contamination(train, ev) == []
    assert audit.contamination(train[:5], ev) == []  # template text, however rare in training
    # an evaluation item copied into more training examples than the old boilerplate bound counts
    copied = train + [audit.AuditExample("t", "train", 30 + k, ev[2].inputs, "x") for k in range(11)]
    (hit,) = audit.contamination(copied, ev)
    assert hit["pairs"] == [(f"t/train/{30 + k}", "e/validation/2") for k in range(11)]


def test_lengths_and_outliers():
    exs = _examples("t", "train", 50, 7)
    exs[4] = audit.AuditExample("t", "train", 4, exs[4].inputs, "   ")
    exs[9] = audit.AuditExample("t", "train", 9, exs[9].inputs * 5, "x")  # ~5x the median
    exs[12] = audit.AuditExample("t", "train", 12, "short", "y", input_tokens=300, target_tokens=2)
    exs[20] = audit.AuditExample("t", "train", 20, exs[20].inputs * 3, "x")  # 3x: not an outlier
    rep = audit.length_report(exs, {"inputs": 256, "targets": 8})
    assert rep["empty_targets"] == ["t/train/4"]
    assert rep["over_length"] == ["t/train/12"]
    assert rep["length_outliers"] == ["t/train/9", "t/train/12"]


def test_words_and_shingles_worked_example():
    assert audit.words("It's 5 P.M.!") == ["it", "s", "5", "p", "m"]
    a, b = audit.shingles("the red fox ran home"), audit.shingles("The red fox ran, away")
    assert a == {"the red fox", "red fox ran", "fox ran home"}
    assert audit.jaccard(a, b) == 0.5
    ex = [audit.AuditExample("t", "s", i, t, "") for i, t in enumerate(["the red fox ran home",
                                                                       "the red fox ran away"])]
    assert audit.near_duplicates(ex, threshold=0.8) == []


@pytest.mark.slow
def test_audit_command_on_a_flan_mini_task(tmp_path):
    out = tmp_path / "audit.json"
    proc = subprocess.run([sys.executable, "-m", "flan_jax.cli", "audit", "flan_mini.mini_add:zs_noopt",
                           "--max_examples", "200", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["num_train"] == 200 and report["num_eval"] > 0
    assert "near-duplicate pairs" in proc.stdout


def test_audit_command_bad_mixture_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flan_jax.cli", "audit", "no_such_mixture"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "no_such_mixture" in proc.stderr and "Traceback" not in proc.stderr
