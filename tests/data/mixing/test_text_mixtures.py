"""Plain-text components of mixture files: parsing, shares by hand, bad input as one CLI line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flan_jax.data.mixing import mixtures

REPO = Path(__file__).resolve().parents[3]
MINI_A = "flan_mini.mini_add:zs_noopt"
MINI_B = "flan_mini.mini_subtract:zs_noopt"
DOCS = "The quick brown fox jumps over the lazy dog.\n\nA second document about nothing.\n"


def _write(folder, body, name="m.toml"):
    (folder / "wiki.txt").write_text(DOCS)
    path = folder / name
    path.write_text(body)
    return path


TEXT = '[text.wiki]\nfiles = ["wiki.txt"]\nobjective = "lm"\nchunk_length = 16\n'


def test_text_share_is_fixed_and_the_rest_follows_the_rate(tmp_path):
    path = _write(tmp_path, TEXT + f"""
[mixture.m]
cap = 3000
include = [{{ task = "{MINI_A}" }}, {{ task = "{MINI_B}" }}, {{ text = "wiki", share = 0.2 }}]

[mixture.w]
rate = "weights"
include = [{{ task = "{MINI_A}", weight = 3 }}, {{ text = "wiki", weight = 1 }}]
""")
    decls, _ = mixtures.load_files([path])
    got = {leaf.task: leaf.share for leaf in mixtures.resolve("m", decls, sizes={MINI_A: 5000, MINI_B: 1000})}
    # capped sizes 3000 : 1000 share the 0.8 the text leaves
    assert got == pytest.approx({MINI_A: 0.6, MINI_B: 0.2, "text.wiki:lm": 0.2})
    got = {leaf.task: leaf.share for leaf in mixtures.resolve("w", decls)}
    assert got == pytest.approx({MINI_A: 0.75, "text.wiki:lm": 0.25})
    leaf = [x for x in mixtures.resolve("m", decls, sizes={MINI_A: 1, MINI_B: 1}) if x.collection == "text"][0]
    assert (leaf.cluster, leaf.size_source, leaf.num_examples) == ("text", "share", None)
    source = decls["m"].include[2]["source"]
    assert source.files == (str(tmp_path / "wiki.txt"),) and source.chunk_length == 16


@pytest.mark.parametrize("body, fragment", [
    (TEXT.replace('"wiki.txt"', '"missing.txt"'), "text 'wiki': no such file {dir}/missing.txt"),
    (TEXT.replace('"lm"', '"mlm"'), "text 'wiki': field 'objective' must be one of lm, span_corruption"),
    (TEXT.replace('objective = "lm"\n', ''), "text 'wiki': field 'objective' must be one of"),
    (TEXT.replace("chunk_length = 16", "chunk_length = 1"), "field 'chunk_length' must be an integer >= 2"),
    (TEXT.replace('files = ["wiki.txt"]', 'tfds = "c4/en"\nfiles = ["wiki.txt"]'), "give one of 'files'"),
    (TEXT + "colour = 1\n", "text 'wiki': unknown keys ['colour']"),
    (TEXT.replace("wiki.txt", "wiki.csv"), "plain text must be .txt or .jsonl"),
])
def test_bad_text_tables_name_file_and_field(tmp_path, body, fragment):
    (tmp_path / "wiki.csv").write_text("x")
    path = _write(tmp_path, body + f'[mixture.m]\ninclude = [{{ task = "{MINI_A}" }}, {{ text = "wiki", share = 0.5 }}]\n')
    with pytest.raises(mixtures.MixtureError) as e:
        mixtures.load_files([path])
    assert str(e.value).startswith(f"{path}: ")
    assert fragment.format(dir=tmp_path) in str(e.value)


@pytest.mark.parametrize("entry, fragment", [
    ('{ text = "wiki" }', "include[1]: a text entry needs share = a number between 0 and 1"),
    ('{ text = "wiki", share = 1.5 }', "got 1.5"),
    ('{ text = "wikki", share = 0.1 }', "include[1]: unknown text component 'wikki'; did you mean wiki"),
    ('{ task = "%s", share = 0.1 }' % MINI_B, "include[1]: 'share' belongs to text entries"),
])
def test_bad_text_entries_name_the_entry(tmp_path, entry, fragment):
    path = _write(tmp_path, TEXT + f'[mixture.m]\ninclude = [{{ task = "{MINI_A}" }}, {entry}]\n')
    with pytest.raises(mixtures.MixtureError, match=None) as e:
        decls, _ = mixtures.load_files([path])
        mixtures.resolve("m", decls)
    assert str(e.value).startswith(f"{path}: mixture 'm'") and fragment in str(e.value)


def test_text_shares_must_leave_room(tmp_path):
    path = _write(tmp_path, TEXT + f'[mixture.m]\ninclude = [{{ task = "{MINI_A}" }}, '
                  '{ text = "wiki", share = 0.6 }, { text = "wiki", share = 0.5 }]\n')
    decls, _ = mixtures.load_files([path])
    with pytest.raises(mixtures.MixtureError, match="the text entries' shares sum to 1.1"):
        mixtures.resolve("m", decls)


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FLAN_JAX_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "flan_jax.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("body, fragment", [
    (TEXT.replace('"wiki.txt"', '"gone.txt"'), "text 'wiki': no such file"),
    (TEXT.replace('"lm"', '"causal"'), "text 'wiki': field 'objective' must be one of lm, span_corruption (span_corruption for T5, lm for decoders), got 'causal'"),
])
def test_cli_bad_text_component_is_one_line_exit_2(tmp_path, body, fragment):
    path = _write(tmp_path, body + f'[mixture.with_text]\ninclude = [{{ task = "{MINI_A}" }}, '
                  '{ text = "wiki", share = 0.5 }]\n', name="mine.toml")
    proc = _cli("mixture", "with_text", "--mixtures_path", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in lines[0] and fragment in lines[0]


@pytest.mark.slow
def test_a_tfds_text_component_streams_documents(tmp_path, monkeypatch):
    """c4 read through TFDS (tfds.testing.mock_data: random strings of c4's structure)."""
    import seqio
    import tensorflow_datasets as tfds

    from flan_jax.data.sources import plain_text

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))  # nothing prepared there
    path = _write(tmp_path, '[text.c4]\ntfds = "c4/en:3.1.0"\nobjective = "lm"\nchunk_length = 8\n'
                  f'[mixture.m]\ninclude = [{{ task = "{MINI_A}" }}, {{ text = "c4", share = 0.1 }}]\n')
    decls, _ = mixtures.load_files([path])
    source = decls["m"].include[1]["source"]
    with pytest.raises(plain_text.PlainTextError, match=f"{path}: text 'c4', tfds 'c4/en:3.1.0': cannot read "
                       "split 'train' offline"):
        next(plain_text._tfds_documents(source))
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
        docs = list(plain_text._tfds_documents(source))
        task = plain_text.register_text_source(source)
        rows = list(seqio.get_mixture_or_task(task).get_dataset(None, split="train", shuffle=False,
                                                                use_cached=False).as_numpy_iterator())
    assert len(docs) == 4 and task == "text.c4:lm"
    from flan_jax.data.tasks.registry import default_vocabulary
    want = [c.tolist() + [1] for d in docs for c in plain_text.chunks(default_vocabulary().encode(d), 8)]
    assert [r["targets"].tolist() for r in rows] == want


def test_cli_lists_the_text_component_with_its_share(tmp_path):
    _write(tmp_path, TEXT + f'[mixture.with_text]\ninclude = [{{ task = "{MINI_A}" }}, '
           '{ text = "wiki", share = 0.2 }]\n', name="mine.toml")
    proc = _cli("mixture", "with_text", "--mixtures_path", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    row = [line.split() for line in proc.stdout.splitlines() if line.startswith("text.wiki:lm")]
    assert row == [["text.wiki:lm", "text", "-", "20.000%", "share"]]
    assert "counted at the cap" not in proc.stdout
