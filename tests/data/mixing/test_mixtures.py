"""Mixture files: every declared mixture resolves; rates match hand computation; bad files fail
with the file and entry named; sampled shares match declared rates."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from flan_jax.data.mixing import mixtures

REPO = Path(__file__).resolve().parents[3]
MINI_A = "flan_mini.mini_parity:zs_opt"
MINI_B = "flan_mini.mini_parity:zs_noopt"


def write(tmp_path, text, name="m.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_declared_mixture_resolves():
    decls, locals_ = mixtures.load_files()
    assert {"flan2021", "flan_mini_all", "cot", "flan2022"} <= set(decls)
    assert locals_ == {}
    for name in decls:
        leaves = mixtures.resolve(name, decls)
        assert leaves, name
        assert math.isclose(sum(leaf.share for leaf in leaves), 1.0, rel_tol=1e-9), name
        assert all(leaf.share > 0 for leaf in leaves)


def test_held_out_family_excludes_cluster_and_its_partner():
    decls, _ = mixtures.load_files()
    train = mixtures.resolve("flan2021_heldout_no_reading_comprehension", decls)
    clusters = {leaf.cluster for leaf in train}
    assert "reading_comprehension" not in clusters
    assert "reading_comprehension_commonsense" not in clusters
    assert len(clusters) == 10
    evaluation = mixtures.resolve("flan2021_heldout_reading_comprehension_eval", decls)
    assert {leaf.cluster for leaf in evaluation} == {"reading_comprehension"}
    assert all(leaf.task.endswith(":eval") for leaf in evaluation)
    mini = mixtures.resolve("flan_mini_heldout_no_mini_comparison", decls)
    assert "mini_comparison" not in {leaf.cluster for leaf in mini}


def test_flan2022_collection_weights():
    decls, _ = mixtures.load_files()
    by_collection = mixtures.group_shares(mixtures.resolve("flan2022", decls), "collection")
    assert by_collection["flan2021"] == pytest.approx(0.40)
    assert by_collection["cot"] == pytest.approx(0.05)
    assert by_collection["t0_sf"] == pytest.approx(0.32)
    assert by_collection["niv2"] == pytest.approx(0.20)
    assert by_collection["dialog"] == pytest.approx(0.03)


def test_examples_proportional_with_cap_and_nesting_by_hand(tmp_path):
    path = write(tmp_path, f"""
[mixture.inner]
rate = "examples_proportional"
cap = 3000
include = [{{ task = "{MINI_A}" }}, {{ task = "{MINI_B}" }}]

[mixture.outer]
rate = "weights"
include = [{{ mixture = "inner", weight = 0.4 }}, {{ task = "flan_mini.mini_subtract:zs_noopt", weight = 0.6 }}]

[mixture.tempered]
rate = "examples_proportional"
temperature = 2.0
include = [{{ task = "{MINI_A}" }}, {{ task = "{MINI_B}" }}]
""")
    decls, _ = mixtures.load_files([path])
    sizes = {MINI_A: 5000, MINI_B: 1000}
    # min(5000, 3000) = 3000 vs 1000 -> 0.75 / 0.25
    inner = {leaf.task: leaf.share for leaf in mixtures.resolve("inner", decls, sizes=sizes)}
    assert inner == pytest.approx({MINI_A: 0.75, MINI_B: 0.25})
    outer = {leaf.task: leaf.share for leaf in mixtures.resolve("outer", decls, sizes=sizes)}
    assert outer == pytest.approx({MINI_A: 0.30, MINI_B: 0.10, "flan_mini.mini_subtract:zs_noopt": 0.60})
    # temperature 2: sqrt(5000) : sqrt(1000)
    tempered = {leaf.task: leaf.share for leaf in mixtures.resolve("tempered", decls, sizes=sizes)}
    ratio = math.sqrt(5000) / (math.sqrt(5000) + math.sqrt(1000))
    assert tempered[MINI_A] == pytest.approx(ratio)


@pytest.mark.parametrize("body, message", [
    ('[mixture.m]\ninclude = [{ task = "flan_mini.mini_parit:zs_opt" }]', "include[0]: unknown task 'flan_mini.mini_parit:zs_opt'; did you mean"),
    ('[mixture.m]\nrate = "weights"\ninclude = [{ task = "%s", weight = 0 }]' % MINI_A, "include[0]: weight must be a positive number, got 0"),
    ('[mixture.m]\nrate = "weights"\ninclude = [{ task = "%s", weight = -1.5 }]' % MINI_A, "weight must be a positive number, got -1.5"),
    ('[mixture.m]\ncap = 0\ninclude = [{ task = "%s" }]' % MINI_A, "cap must be a positive number"),
    ('[mixture.a]\nrate = "weights"\ninclude = [{ mixture = "b", weight = 1 }]\n'
     '[mixture.b]\nrate = "weights"\ninclude = [{ mixture = "a", weight = 1 }]', "includes itself: a -> b -> a"),
    ('[mixture.m]\nrate = "weights"\ninclude = [{ mixture = "nowhere", weight = 1 }]', "unknown mixture 'nowhere'"),
    # issue 13: a weight or a nested mixture in a size-proportional mixture would be ignored
    ('[mixture.m]\ninclude = [{ task = "%s", weight = 0.9 }]' % MINI_A, 'include[0]: a weight needs rate = "weights"'),
    ('[mixture.m]\nrate = "equal"\ninclude = [{ mixture = "m2" }]\n[mixture.m2]\ninclude = [{ task = "%s" }]' % MINI_A,
     'include[0]: a mixture entry needs rate = "weights"'),
    ('[mixture.m]\nsize_source = "guess"\ninclude = [{ task = "%s" }]' % MINI_A, "size_source 'guess' is not one of"),
    ('[mixture.m]\ninclude = [{ release = "niv3" }]', "include[0]: unknown release collection 'niv3'; did you mean niv2"),
    ('[mixture.m]\ninclude = [{ release = "niv2", clusters = ["x"] }]', "include[0]: unknown selector keys ['clusters']"),
    ('[mixture.m]\ninclude = [{ release = "t0_sf", variants = ["eval"] }]', "include[0]: unknown variant 'eval'"),
    ('[mixture.m]\nrate = "fancy"\ninclude = [{ task = "%s" }]' % MINI_A, "rate 'fancy' is not one of"),
    ('[mixture.m]\ninclude = []', "'include' must be a non-empty list"),
    ('[mixture.m]\ninclude = [{ collection = "flan_mini", clusters = ["mini_nothing"] }]', "unknown cluster 'mini_nothing'"),
    ('[mixture.m\ninclude = 3', "not valid TOML"),
])
def test_bad_mixture_files_name_file_and_entry(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(mixtures.MixtureError) as e:
        decls, _ = mixtures.load_files([path])
        mixtures.resolve("m" if "mixture.m" in body else "a", decls)
    assert str(path) in str(e.value)
    assert message in str(e.value)


def test_duplicate_name_across_files(tmp_path):
    body = '[mixture.m]\ninclude = [{ task = "%s" }]' % MINI_A
    a, b = write(tmp_path, body, "a.toml"), write(tmp_path, body, "b.toml")
    with pytest.raises(mixtures.MixtureError, match="already declared in .*a.toml"):
        mixtures.load_files([a, b])


def test_local_collection_missing_file_is_an_error(tmp_path):
    path = write(tmp_path, """
[local.mine]
file_pattern = "mine/{split}.jsonl"
format = "alpaca"
how_to_obtain = "Write it."

[mixture.m]
rate = "weights"
include = [{ local = "mine", weight = 1 }]
""")
    with pytest.raises(mixtures.MixtureError, match="mine/train.jsonl .* Write it."):
        mixtures.register_mixture("m", paths=[path], data_dir=str(tmp_path))


def test_flan2022_without_release_files_names_the_directory(tmp_path):
    with pytest.raises(mixtures.MixtureError, match=f"niv2: directory {tmp_path / 'niv2'} not found"):
        mixtures.register_mixture("flan2022", data_dir=str(tmp_path))


@pytest.mark.slow
def test_sampled_shares_match_declared_rates(tmp_path):
    import seqio

    path = write(tmp_path, f"""
[mixture.sampled]
rate = "weights"
include = [{{ task = "{MINI_A}", weight = 3 }}, {{ task = "flan_mini.mini_subtract:zs_noopt", weight = 1 }}]
""")
    leaves = mixtures.register_mixture("sampled", paths=[path], vocabulary=seqio.ByteVocabulary())
    assert {leaf.task: leaf.share for leaf in leaves} == pytest.approx(
        {MINI_A: 0.75, "flan_mini.mini_subtract:zs_noopt": 0.25})
    ds = seqio.get_mixture_or_task("sampled").get_dataset(
        {"inputs": 256, "targets": 32}, split="train", shuffle=True, seed=3, use_cached=False,
        passthrough_features=["task"])
    n = 2000
    counts = {}
    for ex in ds.take(n).as_numpy_iterator():
        task = ex["task"].decode()
        counts[task] = counts.get(task, 0) + 1
    p = counts.get(MINI_A, 0) / n
    sigma = math.sqrt(0.75 * 0.25 / n)
    assert abs(p - 0.75) < 4 * sigma, counts


def test_cli_json_and_plot(tmp_path):
    out = tmp_path / "shares.png"
    proc = subprocess.run(
        [sys.executable, "-m", "flan_jax.cli", "mixture", "flan_mini_all", "--json", "--plot", str(out)],
        capture_output=True, text=True, check=True)
    payload = json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])
    assert payload["mixture"] == "flan_mini_all"
    assert sum(payload["clusters"].values()) == pytest.approx(1.0)
    assert out.stat().st_size > 1000


def test_cli_unknown_mixture_is_one_line_error():
    proc = subprocess.run([sys.executable, "-m", "flan_jax.cli", "mixture", "flan_mini_al"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown mixture 'flan_mini_al'; did you mean flan_mini_all" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_mixture_without_training_examples_is_one_line_error(tmp_path):
    # issue 13: was a ZeroDivisionError traceback
    path = write(tmp_path, '[mixture.empty]\ncap = 3000\ninclude = [{ task = "%s" }]' % MINI_A)
    decls, _ = mixtures.load_files([path])
    with pytest.raises(mixtures.MixtureError) as e:
        mixtures.resolve("empty", decls, sizes={MINI_A: 0})
    assert str(e.value) == (f"{path}: mixture 'empty': none of its tasks has training examples "
                            f"({MINI_A})")
    # next to a task with examples, an empty task just gets no share
    path = write(tmp_path, '[mixture.m]\ninclude = [{ task = "%s" }, { task = "%s" }]' % (MINI_A, MINI_B))
    decls, _ = mixtures.load_files([path])
    got = {leaf.task: leaf.share for leaf in mixtures.resolve("m", decls, sizes={MINI_A: 0, MINI_B: 7})}
    assert got == {MINI_A: 0.0, MINI_B: 1.0}


def test_nested_weights_are_honoured(tmp_path):
    # issue 13: a 0.9 / 0.1 mixture inside another keeps its 9:1 ratio (as seqio flattens it)
    c = "flan_mini.mini_subtract:zs_noopt"
    path = write(tmp_path, f"""
[mixture.inner]
rate = "weights"
include = [{{ task = "{MINI_A}", weight = 0.9 }}, {{ task = "{MINI_B}", weight = 0.1 }}]

[mixture.outer]
rate = "weights"
include = [{{ mixture = "inner", weight = 1 }}, {{ task = "{c}", weight = 1 }}]
""")
    decls, _ = mixtures.load_files([path])
    got = {leaf.task: leaf.share for leaf in mixtures.resolve("outer", decls)}
    assert got == pytest.approx({MINI_A: 0.45, MINI_B: 0.05, c: 0.5}, abs=1e-12)


def test_task_selected_twice_gets_both_rates(tmp_path):
    # a dataset without options asked for with and without options: its no-options task
    # stands for both settings, so it carries two rates (flan/v2/mixtures_utils.py puts
    # every dataset in every setting)
    path = write(tmp_path, """
[mixture.m]
cap = 3000
include = [{ collection = "flan_mini", datasets = ["mini_parity", "mini_add"], variants = ["zs_opt", "zs_noopt"] }]
""")
    from flan_jax.data.templates import flan_mini

    opts = {s.name: s.has_options for s in flan_mini.all_datasets()}
    assert opts["mini_parity"] and not opts["mini_add"]
    decls, _ = mixtures.load_files([path])
    sizes = {MINI_A: 100, MINI_B: 100, "flan_mini.mini_add:zs_noopt": 100}
    got = {leaf.task: leaf.share for leaf in mixtures.resolve("m", decls, sizes=sizes)}
    assert got == pytest.approx({MINI_A: 0.25, MINI_B: 0.25, "flan_mini.mini_add:zs_noopt": 0.5})
