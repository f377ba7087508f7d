"""The shipped FLAN mixtures equal the recipes, computed here from the published size table.

Expected shares are computed in this file from (a) the published counts, read straight from the
CSV, (b) the recipe formulas of google-research/FLAN (flan/mixtures.py: min(n, 3000) per
dataset, one prompt setting; flan/v2/mixtures_utils.py + run_example.py: one mixture per
setting, each count capped, settings at 25% / 50%) and (c) the held-out exclusion rule of
flan/task_splits.py, restated below in flan_jax cluster names. Only catalogue facts (a
source's cluster, whether it has answer options) come from flan_jax.
"""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flan_jax.data.templates import flan2021
from flan_jax.data.mixing import mixtures

REPO = Path(__file__).resolve().parents[3]
CSV = REPO / "flan_jax" / "assets" / "published" / "flan_num_cases.csv"

# flan/task_splits.py generate_inter_cluster_splits: when the key is held out, these also leave
# training (entailment <-> paraphrase; read_comp_and_common_sense <-> reading_comprehension,
# common_sense).
FLAN_EXCLUSIONS = {
    "nli": {"paraphrase"},
    "paraphrase": {"nli"},
    "commonsense": {"reading_comprehension_commonsense"},
    "reading_comprehension": {"reading_comprehension_commonsense"},
    "reading_comprehension_commonsense": {"reading_comprehension", "commonsense"},
}
# flan/v2/mixtures_utils.py ZS_OPT/ZS_NOOPT/FS_OPT/FS_NOOPT_TEMPLATES -> template types.
SETTING_TYPES = {"zs_opt": ["zero_shot"], "zs_noopt": ["zero_shot"],
                 "fs_opt": ["five_shot", "x_shot"], "fs_noopt": ["x_shot"]}


def published():
    lines = [line for line in CSV.read_text().splitlines() if not line.startswith("#")]
    return {(r["collection"], r["source"]): {k: int(r[k]) for k in ("zero_shot", "x_shot", "five_shot")}
            for r in csv.DictReader(lines)}


def catalogue(collection):
    """[(source, cluster, has_options)] of a collection (T0-SF, Dialog: the published list)."""
    from flan_jax.data.tasks import catalogue

    if collection in ("t0_sf", "dialog"):
        return [(s, collection, False) for (c, s) in published() if c == collection]
    return [(source, spec.cluster, spec.has_options)
            for spec in catalogue.collection_datasets(collection) for source in spec.sources]


def task(collection, source, setting, has_options):
    variant = setting if has_options or not setting.endswith("_opt") else setting.replace("_opt", "_noopt")
    return f"{collection}.{source}:{variant}"


def proportional(rates):
    total = sum(rates.values())
    return {t: r / total for t, r in rates.items()}


def flan2021_recipe(excluded=frozenset(), setting="zs_opt"):
    """flan/mixtures.py: one setting, rate min(train examples, 3000); train examples = the
    published zero-shot count (no TFDS data prepared here)."""
    table = published()
    rates = {task("flan2021", s, setting, opt): min(table["flan2021", s]["zero_shot"], 3000)
             for s, cluster, opt in catalogue("flan2021") if cluster not in excluded}
    return proportional(rates)


def flan2022_recipe(collection, cap, settings):
    table = published()
    out = {}
    for setting, weight in settings.items():
        rates = {}
        for s, _, opt in catalogue(collection):
            t = task(collection, s, setting, opt)
            rates[t] = rates.get(t, 0) + sum(min(table[collection, s][k], cap) for k in SETTING_TYPES[setting])
        for t, share in proportional(rates).items():
            out[t] = out.get(t, 0.0) + weight * share
    return out


FLAN2022_FLAN2021 = dict(collection="flan2021", cap=30000,
                         settings={"zs_opt": 0.25, "zs_noopt": 0.25, "fs_opt": 0.25, "fs_noopt": 0.25})
FLAN2022_COT = dict(collection="cot", cap=100000, settings={"zs_opt": 0.5, "fs_opt": 0.5})
FLAN2022_T0_SF = dict(collection="t0_sf", cap=20000,
                      settings={"zs_opt": 0.25, "zs_noopt": 0.25, "fs_opt": 0.25, "fs_noopt": 0.25})
FLAN2022_DIALOG = dict(collection="dialog", cap=200000, settings={"zs_opt": 0.5, "fs_opt": 0.5})


@pytest.fixture(scope="module")
def decls():
    return mixtures.load_files()[0]


@pytest.fixture(autouse=True)
def no_prepared_data(tmp_path_factory, monkeypatch):
    """Nothing prepared: every size must come from the published table."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path_factory.getbasetemp() / "no_tfds"))
    monkeypatch.delenv("FLAN_JAX_DATA_DIR", raising=False)


def shares(name, decls):
    return {leaf.task: leaf.share for leaf in mixtures.resolve(name, decls)}


def assert_same(got, expected):
    assert set(got) == set(expected)
    for t, share in expected.items():
        assert got[t] == pytest.approx(share, rel=0, abs=1e-9), t


def test_published_table_holds_flan_numbers():
    table = published()
    # spot checks copied by hand from flan/v2/constants.py T_NAME_TO_NUM_CASES
    assert table["flan2021", "cb"] == {"zero_shot": 200, "x_shot": 200, "five_shot": 200}
    assert table["flan2021", "rte"]["zero_shot"] == 2290
    assert table["flan2021", "xsum"] == {"zero_shot": 203560, "x_shot": 192545, "five_shot": 190400}
    assert table["flan2021", "multi_news"] == {"zero_shot": 44960, "x_shot": 3118, "five_shot": 1927}
    assert table["cot", "qed"]["zero_shot"] == 5145
    sources = {("flan2021", s) for s, _, _ in catalogue("flan2021")} | {("cot", s) for s, _, _ in catalogue("cot")}
    assert {k for k in table if k[0] in ("flan2021", "cot")} == sources and len(sources) == 66 + 9
    assert len(catalogue("t0_sf")) == 193 and {s for s, _, _ in catalogue("dialog")} == {"wiki_dialog", "qrecc"}
    small = [s for (c, s), v in table.items() if c == "flan2021" and v["zero_shot"] < 3000]
    assert len(small) == 10


@pytest.mark.parametrize("name, setting", [("flan2021", "zs_opt"), ("flan2021_fs_opt", "fs_opt"),
                                           ("flan2021_zs_noopt", "zs_noopt"), ("flan2021_fs_noopt", "fs_noopt")])
def test_flan2021_single_setting_mixtures(name, setting, decls):
    assert_same(shares(name, decls), flan2021_recipe(setting=setting))


def test_flan2021_is_the_2021_recipe(decls):
    assert_same(shares("flan2021", decls), flan2021_recipe())
    leaves = {leaf.task: leaf for leaf in mixtures.resolve("flan2021", decls)}
    cb = leaves["flan2021.cb:zs_opt"]
    assert (cb.num_examples, cb.size_source.split(":")[0]) == (200, "published")


@pytest.mark.parametrize("held", flan2021.CLUSTERS)
def test_heldout_family_excludes_flan_partners(held, decls):
    excluded = {held} | FLAN_EXCLUSIONS.get(held, set())
    leaves = mixtures.resolve(f"flan2021_heldout_no_{held}", decls)
    assert sum(leaf.share for leaf in leaves if leaf.cluster in excluded) == 0.0
    assert not {leaf.cluster for leaf in leaves} & excluded
    assert_same({leaf.task: leaf.share for leaf in leaves}, flan2021_recipe(excluded))


def test_flan2022_flan2021_is_the_2022_submixture(decls):
    got = shares("flan2022_flan2021", decls)
    assert_same(got, flan2022_recipe(**FLAN2022_FLAN2021))
    # issue 12.3: a dataset without options (xsum) is not halved next to one with (ag_news):
    # both are above the 30k cap in every setting.
    xsum = sum(s for t, s in got.items() if t.startswith("flan2021.xsum:"))
    ag_news = sum(s for t, s in got.items() if t.startswith("flan2021.ag_news:"))
    assert xsum == pytest.approx(ag_news, abs=1e-12)


def test_flan2022_cot_t0_dialog_and_collection_weights(decls):
    cot = flan2022_recipe(**FLAN2022_COT)
    assert_same(shares("flan2022_cot", decls), cot)
    t0 = flan2022_recipe(**FLAN2022_T0_SF)
    assert_same(shares("flan2022_t0_sf", decls), t0)
    dialog = flan2022_recipe(**FLAN2022_DIALOG)
    assert_same(shares("flan2022_dialog", decls), dialog)
    flan = flan2022_recipe(**FLAN2022_FLAN2021)
    # flan/v2/run_example.py flan2022_submix: 0.4 / 0.32 / 0.2 / 0.05 / 0.03; NIv2 files absent:
    # one placeholder task per setting
    expected = {t: 0.40 * s for t, s in flan.items()} | {t: 0.05 * s for t, s in cot.items()}
    expected |= {t: 0.32 * s for t, s in t0.items()} | {t: 0.03 * s for t, s in dialog.items()}
    expected |= {"niv2.*:zs_noopt": 0.10, "niv2.*:fs_noopt": 0.10}
    assert_same(shares("flan2022", decls), expected)
    available = {t: 0.40 * s / 0.45 for t, s in flan.items()} | {t: 0.05 * s / 0.45 for t, s in cot.items()}
    assert_same(shares("flan2022_available", decls), available)


@pytest.mark.slow
def test_cli_json_rates_and_size_sources(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TFDS_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "flan_jax.cli", "mixture", "flan2021", "--json"],
                          capture_output=True, text=True, check=True, env=env)
    payload = json.loads(proc.stdout)
    assert_same({t["task"]: t["share"] for t in payload["tasks"]}, flan2021_recipe())
    assert {t["size_source"] for t in payload["tasks"]} == {
        "published: google-research/FLAN flan/v2/constants.py T_NAME_TO_NUM_CASES"}
