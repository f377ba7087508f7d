"""Project issue 13, data part: a folder of bad files of every kind goes through the `flan-jax`
program (a subprocess, as a user runs it). Each gives exit status 2 and exactly one stderr line
naming the file (and line / field / item / messages[i]), no traceback, the inputs byte-identical
and nothing written."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ALPACA = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
CHAT_OK = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]


def _jsonl(*rows):
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


# file name -> (content, what the one stderr line must contain after "<path>")
BAD_FILES = {
    "null_field.jsonl": (_jsonl(ALPACA, {**ALPACA, "instruction": None}),
                         ":2: field 'instruction' must be a non-empty string, found null"),
    "empty.jsonl": ("", ": no rows (the file is empty"),
    "blank_lines.jsonl": ("\n  \n\n", ": no rows (the file is empty or holds only blank lines)"),
    "duplicate_key.jsonl": (_jsonl(ALPACA, '{"instruction": "a", "output": "b", "output": "c"}'),
                            ":2: key 'output' appears twice in one object"),
    "deep.jsonl": (_jsonl('{"instruction": "a", "output": "b", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"),
                   ":1: malformed JSON (nested more than 100 levels deep)"),
    "number_output.jsonl": (_jsonl({**ALPACA, "output": 42}),
                            ":1: field 'output' must be a non-empty string, found a number (42)"),
    "nan_output.jsonl": ('{"instruction": "a", "output": NaN}\n',
                         ":1: field 'output' must be a non-empty string, found a number (NaN)"),
    "list_item.json": (f'[\n  {json.dumps(ALPACA)},\n  "not an object"\n]\n',
                       ":3: item 1: expected a JSON object, found a string"),
    "chat_user_last.jsonl": (_jsonl({"messages": CHAT_OK + [{"role": "user", "content": "Bye"}]}),
                             ":1: messages[2] is a user turn after the last assistant turn"),
    "chat_late_system.jsonl": (_jsonl({"messages": CHAT_OK[:1] + [{"role": "system", "content": "S"}]
                                       + CHAT_OK[1:]}),
                               ":1: messages[1] is a system turn after the first position"),
    "cot_header.tsv": ("question\tanswer\trationale\nIs ice cold?\tyes\tIt is frozen.\n",
                       ":1: looks like a header row (question, answer, rationale)"),
    "cot_empty_field.tsv": ("Is ice cold?\tyes\tIt is frozen.\nIs fire cold?\tno\t \n",
                            ":2: field 'chain_of_thought' is empty"),
    "latin1.jsonl": (b'{"instruction": "caf\xe9", "output": "x"}\n', ":1: not UTF-8 (byte 0xe9"),
    "malformed.jsonl": (_jsonl(ALPACA, '{"instruction": "a", "output": }'), ":2: malformed JSON"),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


def _flan_jax(*args, cwd, env=None):
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("FLAN_JAX_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "flan_jax.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)


def _assert_one_line_error(proc, culprit: str, fragment: str):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert culprit in lines[0] and fragment in lines[0], lines[0]


def test_every_kind_of_bad_data_file_exits_2_with_one_line(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, (content, _) in BAD_FILES.items():
        (folder / name).write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    before = _snapshot(tmp_path)
    for name, (_, fragment) in BAD_FILES.items():
        proc = _flan_jax("check", str(folder / name), cwd=tmp_path)
        _assert_one_line_error(proc, str(folder / name) + fragment.split(" ")[0].split("(")[0], fragment)
        assert proc.stderr.startswith(str(folder / name)), proc.stderr
    assert _snapshot(tmp_path) == before  # inputs byte-identical, nothing written next to them


@pytest.mark.slow
def test_bad_vocabulary_model_and_gin_files_exit_2_with_one_line(tmp_path):
    from safetensors.numpy import save_file
    from transformers import LlamaConfig

    good = tmp_path / "good.jsonl"
    good.write_text(_jsonl(ALPACA))
    vocab_file = tmp_path / "spiece.model"  # a sentencepiece .vocab text file, renamed
    vocab_file.write_text("<pad>\t0\n</s>\t0\n<unk>\t0\n▁the\t-1.5\n")
    hf = tmp_path / "hf"
    hf.mkdir()
    LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1, head_dim=8).to_json_file(hf / "config.json")
    save_file({"model.embed_tokens.weight": np.zeros((64, 16), np.float32)}, str(hf / "model.safetensors"))
    data = (hf / "model.safetensors").read_bytes()
    (hf / "model.safetensors").write_bytes(data[: len(data) // 2])
    gin_file = tmp_path / "bad.gin"
    gin_file.write_text("# my run\ntrain.num_stepz = 3\n")
    before = _snapshot(tmp_path)

    proc = _flan_jax("check", str(good), cwd=tmp_path, env={"FLAN_JAX_VOCAB": str(vocab_file)})
    _assert_one_line_error(proc, str(vocab_file), ".vocab text file")
    assert "INTERNAL" not in proc.stderr

    proc = _flan_jax("convert", "--from-hf", str(hf), "--out", str(tmp_path / "ckpt"), cwd=tmp_path)
    _assert_one_line_error(proc, str(hf / "model.safetensors"), "not a readable safetensors file")

    proc = _flan_jax("train", f"--gin_file={gin_file}", f"--model_dir={tmp_path / 'run'}", cwd=tmp_path)
    _assert_one_line_error(proc, f"{gin_file}:2", "did you mean 'num_steps'?")

    assert _snapshot(tmp_path) == before  # no ckpt/ or run/ left half-written, inputs unchanged


@pytest.mark.slow
def test_bad_row_in_a_mixture_file_stops_training_with_one_error_line(tmp_path):
    """The user's route: their file declared in an added mixture folder, then `flan-jax train`."""
    (tmp_path / "data" / "mine").mkdir(parents=True)
    (tmp_path / "data" / "mine" / "train.jsonl").write_text(
        _jsonl(ALPACA, '{"instruction": "x", "output": "a", "output": "b"}'))
    (tmp_path / "mix").mkdir()
    (tmp_path / "mix" / "mine.toml").write_text(
        '[local.mine]\nfile_pattern = "mine/{split}.jsonl"\nformat = "alpaca"\nsplits = ["train"]\n\n'
        '[mixture.my_mix]\nrate = "equal"\ninclude = [{ local = "mine" }]\n')
    before = _snapshot(tmp_path)
    proc = _flan_jax("train", "--gin_file=experiments/flan_mini_t5_tiny.gin",
                     "--gin.train.mixture='my_mix'", "--gin.train.num_steps=2",
                     "--mixtures_path", str(tmp_path / "mix"), f"--model_dir={tmp_path / 'run'}",
                     cwd=tmp_path, env={"FLAN_JAX_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (f"flan-jax train: error: {tmp_path}/data/mine/train.jsonl:2: key 'output' "
                         "appears twice in one object (JSON would keep only the last value); remove one")
    assert all(" INFO " in line for line in lines[:-1]), lines  # only the trainer's own log lines
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("run")} == before
