"""A mixture's fingerprint: what changes it (tasks, shares, templates, file content, options)
and what does not (copying a file elsewhere keeps its content; rounding noise in shares);
`differences` names each change."""
import hashlib
import json

import pytest

from flan_jax.data.mixing import fingerprint, mixtures
from flan_jax.data.tasks import registry
from flan_jax.data.templates.spec import DatasetSpec, ProceduralSource, Template

ROWS = [{"instruction": f"Name the number {i}.", "input": "", "output": str(i)} for i in range(4)]


@pytest.fixture(autouse=True)
def _forget_tasks():
    yield
    import seqio

    for name in list(seqio.TaskRegistry.names()):
        if name.startswith(("local.fp_", "custom.fp_")):
            seqio.TaskRegistry.remove(name)
            registry._REGISTERED.pop(name, None)


def _files(folder, rows_a=ROWS, rows_b=ROWS[:1], body='rate = "equal"\ninclude = [{ local = "fp_a" }]'):
    for name, rows in (("a", rows_a), ("b", rows_b)):
        (folder / f"{name}_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    locals_ = "".join(f'[local.fp_{n}]\nfile_pattern = "{folder}/{n}_{{split}}.jsonl"\nformat = "alpaca"\n'
                      'splits = ["train"]\n\n' for n in "ab")
    path = folder / "fp.toml"
    path.write_text(f"{locals_}[mixture.fp_m]\n{body}\n")
    mixtures.register_mixture("fp_m", paths=[path])
    return fingerprint.describe("fp_m", paths=[path])


def test_file_signature_is_the_content_hash(tmp_path):
    p = tmp_path / "x.txt"
    p.write_bytes(b"hello\n")
    assert fingerprint.file_signature(p) == f"6 bytes, sha256 {hashlib.sha256(b'hello' + bytes([10])).hexdigest()[:16]}"
    assert fingerprint.file_signature(tmp_path / "nope") == "missing"


@pytest.mark.slow
def test_tasks_files_and_options_are_covered(tmp_path):
    one = _files(tmp_path)
    assert one["tasks"] == {"local.fp_a:zs_noopt": 1.0}
    assert list(one["files"]) == [str(tmp_path / "a_train.jsonl")]
    assert fingerprint.differences(one, _files(tmp_path)) == []  # rewritten identically: the same

    other = _files(tmp_path, body='rate = "equal"\ninclude = [{ local = "fp_b" }]')
    assert fingerprint.differences(one, other) == [
        "tasks removed: local.fp_a:zs_noopt", "tasks added: local.fp_b:zs_noopt",
        f"file {tmp_path / 'a_train.jsonl'} no longer read", f"file {tmp_path / 'b_train.jsonl'} now read"]

    edited = _files(tmp_path, rows_a=[*ROWS[:3], {**ROWS[3], "output": "9"}])
    (change,) = fingerprint.differences(one, edited)
    assert change.startswith(f"file {tmp_path / 'a_train.jsonl'} changed (")

    both = _files(tmp_path, body='rate = "weights"\ninclude = [{ local = "fp_a", weight = 3 }, { local = "fp_b", weight = 1 }]')
    reweighted = _files(tmp_path, body='rate = "weights"\ninclude = [{ local = "fp_a", weight = 1 }, { local = "fp_b", weight = 1 }]')
    assert fingerprint.differences(both, reweighted) == [
        "shares changed: local.fp_a:zs_noopt 0.75 -> 0.5, local.fp_b:zs_noopt 0.25 -> 0.5"]

    capped = _files(tmp_path, body='rate = "equal"\ninclude = [{ local = "fp_a" }]\ndrop_flagged = ["duplicates"]')
    assert fingerprint.differences(one, capped) == ["mixture options changed: fp_m"]


def test_templates_change_the_rendering_digest():
    source = ProceduralSource(lambda seed, n: [{"x": str(i)} for i in range(n)], {"train": 4}, {"train": 1})

    def spec(text):
        return DatasetSpec("fp_d", "misc", {"fp_d": source}, dict, ("x", "answer"), (Template(text, "{answer}"),))

    (name,) = registry.register_dataset_tasks(spec("Say {x}."), collection="custom", variants=["zs_noopt"])
    first = fingerprint.describe(name)
    registry.register_dataset_tasks(spec("Repeat {x}."), collection="custom", variants=["zs_noopt"])
    assert fingerprint.differences(first, fingerprint.describe(name)) == [
        "templates or rendering changed: custom.fp_d:zs_noopt"]
    registry.register_dataset_tasks(spec("Say {x}."), collection="custom", variants=["zs_noopt"])
    assert fingerprint.differences(first, fingerprint.describe(name)) == []  # the lambda's address is not used
