"""Execute every notebook in notebooks/ end to end on tiny settings and check a real output of each.

Each notebook has one cell tagged "parameters"; the test replaces the values of the names it
overrides there (a name that is missing fails the test, so a renamed parameter is noticed), runs
the notebook with nbclient in a kernel of this interpreter, and then reads the outputs:

* 01: the mixture table's shares sum to 1 and give each of the n datasets 1/n (every flan-mini
  train split has 2,000 rows, below the 3,000 cap; a dataset with options splits its 1/n
  between its zs_opt and zs_noopt tasks), the held-out
  cluster is absent, every variant was rendered, the loss-mask image was drawn;
* 02: 8 devices, the MLP kernel's mesh axes follow the rules table, and the loss decreased;
* 03: both reports (before/after training) list every held-out task with the chance level and
  number of examples asked for, and the bar chart was drawn.

The kernel is registered in a temporary directory (ipykernel's `install(prefix=...)`, which
writes this interpreter's path into kernel.json), so a fresh venv with `pip install -e .[test]`
needs nothing else. The kernel starts without the test session's 8-device XLA_FLAGS: notebook 02
must create its fake devices itself.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest
from ipykernel import kernelspec
from nbclient import NotebookClient

from flan_jax.data.templates import flan_mini

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL_NAME = "flan_jax_notebook_test"
CELL_TIMEOUT = 900  # seconds; the shared CPU can be slow


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec for this interpreter in a temp prefix; the kernel environment for the run."""
    prefix = tmp_path_factory.mktemp("jupyter")
    kernelspec.install(kernel_name=KERNEL_NAME, display_name="flan_jax test", prefix=str(prefix))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        mp.delenv("XLA_FLAGS", raising=False)
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
        mp.setenv("JAX_PLATFORMS", "cpu")
        mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        yield


def set_parameters(nb: nbformat.NotebookNode, values: dict) -> None:
    """Replace `NAME = ...` lines of the cell tagged "parameters" by `NAME = repr(value)`."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    lines = cells[0].source.splitlines()
    for name, value in values.items():
        hits = [i for i, line in enumerate(lines) if re.match(rf"{name}\s*=", line)]
        assert len(hits) == 1, f"parameter {name} is not assigned once in the parameters cell"
        lines[hits[0]] = f"{name} = {value!r}"
    cells[0].source = "\n".join(lines)


def run_notebook(name: str, values: dict, workdir: Path) -> dict[str, nbformat.NotebookNode]:
    """Execute notebooks/<name>.ipynb with `values`; returns its cells by id."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    set_parameters(nb, values)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    finally:  # keep the executed notebook for a post-mortem
        nbformat.write(nb, workdir / f"{name}.executed.ipynb")
    return {c.id: c for c in nb.cells}


def text(cell: nbformat.NotebookNode) -> str:
    """stdout and text/plain + text/markdown outputs of a cell."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts += [out.data.get("text/markdown", ""), out.data.get("text/plain", "")]
    return "".join(parts)


def printed_arrays(output: str) -> dict[str, np.ndarray]:
    """`name (b, l)` followed by a printed int array -> {name: array}."""
    found = {}
    for m in re.finditer(r"^(\w+) \((\d+), (\d+)\)\n(\[\[.*?\]\])", output, re.M | re.S):
        values = [int(v) for v in re.findall(r"-?\d+", m.group(4))]
        found[m.group(1)] = np.array(values).reshape(int(m.group(2)), int(m.group(3)))
    return found


def check_packed_decoder_side(b: dict[str, np.ndarray]) -> None:
    """The batch contract (docs/architecture.md), checked position by position on the printout."""
    seg, pos, tgt = b["decoder_segment_ids"], b["decoder_positions"], b["decoder_target_tokens"]
    inp, w = b["decoder_input_tokens"], b["decoder_loss_weights"]
    assert (seg.max(axis=1) >= 2).any(), "no row holds two examples: nothing was packed"
    for r in range(seg.shape[0]):
        for t in range(seg.shape[1]):
            starts = seg[r, t] != 0 and (t == 0 or seg[r, t - 1] != seg[r, t])
            assert pos[r, t] == (0 if starts or seg[r, t] == 0 else pos[r, t - 1] + 1)
            assert inp[r, t] == (0 if starts or seg[r, t] == 0 else tgt[r, t - 1])
            if seg[r, t] == 0:
                assert tgt[r, t] == 0 and w[r, t] == 0
            ends = seg[r, t] != 0 and (t + 1 == seg.shape[1] or seg[r, t + 1] != seg[r, t])
            if ends:  # every example ends with a trained EOS
                assert tgt[r, t] == 1 and w[r, t] == 1


def images(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def test_notebooks_have_no_outputs():
    """Stored without outputs or execution counts (small diffs), each with a parameters cell."""
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["01_templates_tasks_mixtures", "02_training_on_cpu_mesh", "03_evaluation"]
    for name in names:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: {cell.id} has outputs"
        assert "google.colab" in nb.cells[1].source, f"{name}: the first code cell is the Colab set-up"


@pytest.mark.parametrize("name", ["01_templates_tasks_mixtures", "02_training_on_cpu_mesh", "03_evaluation"])
def test_colab_setup_cell(name, monkeypatch, tmp_path):
    """The set-up cell installs only on Colab: editable from the enclosing clone, else clone first."""
    source = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells[1].source
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(list(cmd)))

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, name, "exec"), {})
    assert calls == []  # not on Colab: nothing happens

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.chdir(NOTEBOOKS)  # opened from a clone
    exec(compile(source, name, "exec"), {})
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "-e", ".."]]

    calls.clear()
    monkeypatch.chdir(tmp_path)  # opened alone (e.g. from GitHub): clone, then install editable
    exec(compile(source, name, "exec"), {})
    assert calls[0][:2] == ["git", "clone"] and calls[0][-1] == "/content/flan_jax"
    assert calls[1] == [sys.executable, "-m", "pip", "install", "-q", "-e", "/content/flan_jax"]


@pytest.mark.slow
def test_01_templates_tasks_mixtures(kernel_env, tmp_path):
    mixture = f"flan_mini_heldout_no_{flan_mini.HELD_OUT_CLUSTER}"
    cells = run_notebook("01_templates_tasks_mixtures",
                         {"MIXTURE": mixture, "PACK_BATCH_SIZE": 2}, tmp_path)

    assert re.search(r"^flan2021\s+62 datasets$", text(cells["catalogue-counts"]), re.M)
    assert re.search(r"^flan_mini\s+24 datasets$", text(cells["catalogue-counts"]), re.M)
    rendered = text(cells["render-mini"])
    dataset = flan_mini.cluster_datasets("mini_comparison")[0].name
    for variant in ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt", "eval"):
        assert f"===== flan_mini.{dataset}:{variant} " in rendered
        assert f"===== flan2021.rte:{variant} " in text(cells["render-flan2021"])
    decoder = printed_arrays(text(cells["pack-decoder"]))
    check_packed_decoder_side(decoder)
    # decoder-only rows: inputs come first and are never trained on, targets are
    assert (decoder["decoder_loss_weights"][:, 0] == 0).all()
    enc_dec = printed_arrays(text(cells["pack-enc-dec"]))
    check_packed_decoder_side(enc_dec)
    assert (enc_dec["decoder_loss_weights"] == (enc_dec["decoder_segment_ids"] > 0)).all()
    assert (enc_dec["encoder_segment_ids"].max(axis=1) == enc_dec["decoder_segment_ids"].max(axis=1)).all()
    assert images(cells["pack-plot"]) == 1 and images(cells["mixture-plot"]) == 1

    rows = re.findall(r"^flan_mini\.(\w+):(\w+)\s+(\w+)\s+(\d+)\s+([0-9.]+)$",
                      text(cells["mixture-table"]), re.M)
    held_in = {s.name for c in flan_mini.HELD_IN_CLUSTERS for s in flan_mini.cluster_datasets(c)}
    held_out = {s.name for s in flan_mini.cluster_datasets(flan_mini.HELD_OUT_CLUSTER)}
    assert {r[0] for r in rows} == held_in and not held_out & {r[0] for r in rows}
    shares = [float(r[4]) for r in rows]
    assert sum(shares) == pytest.approx(1.0, abs=1e-6)
    has_options = {s.name: s.has_options for s in flan_mini.all_datasets()}
    expected = [1 / len(held_in) / (2 if has_options[r[0]] else 1) for r in rows]
    assert shares == pytest.approx(expected, abs=1e-8)
    assert {int(r[3]) for r in rows} == {2000}


@pytest.mark.slow
def test_02_training_on_cpu_mesh(kernel_env, tmp_path):
    steps = 8
    cells = run_notebook("02_training_on_cpu_mesh",
                         {"NUM_STEPS": steps, "BATCH_SIZE": 8, "LEARNING_RATE": 1e-2, "LOG_EVERY": 4},
                         tmp_path)

    assert text(cells["imports"]).startswith("8 devices")
    # rules table: kernel ('embed', 'mlp') -> embed on fsdp, mlp on tensor
    row = re.search(r"^encoder/layers_0/mlp/wi_0/kernel\s+\(64, 128\)\s+\('embed', 'mlp'\)\s+(.*)$",
                    text(cells["param-shardings"]), re.M)
    assert row and row.group(1).strip() == "P('fsdp', 'tensor')"
    losses = ast.literal_eval(re.search(r"losses per step: (\[.*\])", text(cells["train"])).group(1))
    assert len(losses) == steps
    assert max(losses[-2:]) < losses[0] - 0.5, losses
    assert images(cells["loss-plot"]) == 1


@pytest.mark.slow
def test_03_evaluation(kernel_env, tmp_path):
    max_examples = 6
    cells = run_notebook("03_evaluation",
                         {"NUM_STEPS": 4, "BATCH_SIZE": 8, "MAX_EXAMPLES": max_examples,
                          "EVAL_BATCH_SIZE": 8, "LEARNING_RATE": 1e-2},
                         tmp_path)

    held_out = [s.name for s in flan_mini.cluster_datasets(flan_mini.HELD_OUT_CLUSTER)]
    for cell_id in ("eval-before", "eval-after"):
        table = text(cells[cell_id])
        for dataset in held_out:
            # | task | template | method | metric | score | chance | examples | truncated | majority | flan.acc |
            row = re.search(rf"^\| flan_mini\.{dataset}:eval \| \d+ \| rank_classification \| accuracy \| "
                            rf"([0-9.]+) \| ([0-9.]+) \| (\d+) \| \d+ \| [0-9.]+ \| ([0-9.]+) \|$", table, re.M)
            assert row, f"{cell_id}: no row for {dataset}"
            assert float(row.group(2)) == 50.0  # two options per comparison example
            assert int(row.group(3)) == max_examples
            assert row.group(4) == row.group(1)  # the flan convention's acc is the headline score
    normalized = text(cells["length-normalized"])
    assert all(re.search(rf"^flan_mini\.{d}:eval\s+[0-9.]+\s+[0-9.]+$", normalized, re.M) for d in held_out)
    assert images(cells["report-files"]) == 1
    assert (tmp_path / "eval_after" / "report.md").is_file()
