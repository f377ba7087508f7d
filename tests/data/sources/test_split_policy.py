"""The split policy: content-hash dev/test parts, stable across processes; derived task splits."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from flan_jax.data.sources import split_policy
from flan_jax.errors import FlanJaxError

# `printf '%s' '{"a":1}' | sha256sum` (coreutils), independent of Python's hashlib.
A1_SHA256 = "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"

ROWS = [{"premise": f"Sentence number {i}.", "hypothesis": "Ünïcode ok", "label": i % 2, "idx": i}
        for i in range(400)]

PARTS_SCRIPT = """
import json, sys
from flan_jax.data.sources.split_policy import dev_test_part
rows = json.loads(sys.stdin.read())
print("".join("d" if dev_test_part(r) == "dev" else "t" for r in rows))
"""


def test_row_fraction_is_the_sha256_of_the_canonical_json():
    assert split_policy.canonical_json({"a": 1}) == '{"a":1}'
    assert split_policy.row_fraction({"a": 1}) == int(A1_SHA256, 16) / 2 ** 256
    assert split_policy.dev_test_part({"a": 1}) == "dev"  # 0.0053 < 0.3


def test_part_ignores_key_order_and_follows_content():
    row = {"b": [1, 2], "a": "é"}
    assert split_policy.canonical_json(row) == '{"a":"é","b":[1,2]}'
    same = {"a": "é", "b": [1, 2]}
    assert split_policy.dev_test_part(row) == split_policy.dev_test_part(same)
    parts = [split_policy.dev_test_part(r) for r in ROWS]
    assert parts == [split_policy.dev_test_part(r) for r in reversed(ROWS)][::-1]


def test_dev_share_is_near_the_fraction():
    dev = sum(split_policy.dev_test_part(r) == "dev" for r in ROWS)
    # Binomial(400, 0.3): mean 120, sd 9.2; +-4 sd.
    assert 83 <= dev <= 157


def test_partition_is_identical_in_two_separate_processes():
    payload = json.dumps(ROWS)
    outs = []
    for seed in ("0", "12345"):  # different str-hash seeds: the partition must not depend on them
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", PARTS_SCRIPT], input=payload, text=True,
                              capture_output=True, env=env, timeout=120, check=True)
        outs.append(done.stdout.strip())
    here = "".join("d" if split_policy.dev_test_part(r) == "dev" else "t" for r in ROWS)
    assert outs[0] == outs[1] == here
    assert set(here) == {"d", "t"}


def test_derived_splits():
    assert split_policy.derived_splits(["validation", "test"]) == {
        "validation": ("validation", None),
        "validation_dev": ("validation", "dev"),
        "validation_test": ("validation", "test"),
        "test": ("test", None),
        "train": ("validation", None),
    }
    # A package with its own train split trains on it.
    assert split_policy.derived_splits(["train", "validation"])["train"] == ("train", None)
    assert split_policy.derived_splits(["test"]) == {"test": ("test", None)}
    assert split_policy.train_from("train", ["validation"]) == "validation"
    assert split_policy.train_from("train", ["train", "validation"]) is None
    assert split_policy.train_from("validation", ["validation"]) is None


@pytest.mark.parametrize("bad", [{"x": b"bytes"}, {"x": float("nan")}, {"x": {1, 2}}])
def test_a_row_that_is_not_json_is_one_error_line(bad):
    with pytest.raises(FlanJaxError, match="not plain JSON"):
        split_policy.dev_test_part(bad)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_a_bad_fraction_is_an_error(fraction):
    with pytest.raises(FlanJaxError, match="dev_fraction"):
        split_policy.dev_test_part({"a": 1}, fraction)
