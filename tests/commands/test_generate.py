"""`flan-jax generate` and eval/generate.py: greedy output equals a greedy loop over plain forward
passes of the same tiny model; beam search with one beam is greedy; a named template renders a dataset's fields as the template text says; JSONL in, JSONL
out; piped stdin gives one output line per prompt; bad inputs are one error line, exit 2."""
import io
import json
import sys

import pytest
from tiny_checkpoint import reference_greedy, write_setup

from flan_jax.cli import main
from flan_jax.errors import FlanJaxError
from flan_jax.eval import generate as gen
from flan_jax.eval import model_loading
from flan_jax.models import params_io


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    out = write_setup(tmp_path_factory.mktemp("generate"))
    out["vocabulary"] = model_loading.load_vocabulary(str(out["vocab"]))
    out["params"] = params_io.load_checkpoint(out["ckpt"])[1]
    return out


def _want(setup, prompt, steps=6):
    return setup["vocabulary"].decode(reference_greedy(setup["params"], list(setup["vocabulary"].encode(prompt)), steps))


def _args(setup, *more):
    return ["generate", "--checkpoint", str(setup["ckpt"]), "--vocabulary", str(setup["vocab"]),
            "--max_decode_length", "6", *more]


@pytest.mark.slow
def test_greedy_and_one_beam_equal_a_plain_greedy_loop(setup, capsys):
    prompts = ["the cat", "is ice cold"]
    want = [_want(setup, p) for p in prompts]
    for extra in ([], ["--decode", "beam", "--beam_size", "1"]):
        capsys.readouterr()
        assert main(_args(setup, "--prompt", prompts[0], "--prompt", prompts[1], *extra)) == 0
        assert capsys.readouterr().out.splitlines() == want, extra


@pytest.mark.slow
def test_template_jsonl_in_jsonl_out(setup, tmp_path):
    rows = [{"a": 3, "b": 4, "id": "x"}, {"a": 10, "b": 2}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    assert main(_args(setup, "--template", "flan_mini.mini_add:eval_t0", "--prompts", str(tmp_path / "p.jsonl"),
                      "--out", str(tmp_path / "o.jsonl"))) == 0
    out = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    # the first non-inverted template of mini_add is "What is {a} plus {b}?" (flan_mini/arithmetic)
    assert [o["rendered"] for o in out] == ["What is 3 plus 4?", "What is 10 plus 2?"]
    assert [o["output"] for o in out] == [_want(setup, o["rendered"]) for o in out]
    assert out[0]["id"] == "x" and all(isinstance(o["score"], float) and "finished" in o for o in out)


@pytest.mark.slow
def test_piped_stdin_one_output_per_line(setup, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("the cat\n\nis ice cold\n"))
    assert main(_args(setup)) == 0
    assert capsys.readouterr().out.splitlines() == [_want(setup, "the cat"), _want(setup, "is ice cold")]


@pytest.mark.slow
def test_render_prompt_kinds():
    renderer = gen.prompt_renderer("flan_mini.mini_add:eval_t0")
    assert gen.render_prompt({"a": 1, "b": 2}, renderer, "x") == "What is 1 plus 2?"
    assert gen.render_prompt("raw text", None, "x") == "raw text"
    assert gen.render_prompt({"prompt": "raw"}, None, "x") == "raw"
    with pytest.raises(FlanJaxError, match=r"^p.jsonl:3: dataset 'mini_add', template 0: field 'b' is not in the example"):
        gen.render_prompt({"a": 1}, renderer, "p.jsonl:3")
    with pytest.raises(FlanJaxError, match="needs a string field 'prompt'"):
        gen.render_prompt({"text": "x"}, None, "p.jsonl:1")
    with pytest.raises(FlanJaxError, match="not a zero-shot or eval variant"):
        gen.prompt_renderer("flan_mini.mini_add:fs_noopt")
    with pytest.raises(FlanJaxError, match="no dataset 'nope'"):
        gen.prompt_renderer("flan_mini.nope:eval")


def test_bad_inputs_are_one_line(setup, tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "ok"}\n{"prompt": \n')
    (tmp_path / "nofield.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "trainer" / "checkpoints" / "5" / "state").mkdir(parents=True)
    cases = [
        (["--checkpoint", str(tmp_path / "nowhere"), "--prompt", "x"], f"checkpoint {tmp_path / 'nowhere'}: does not exist"),
        (["--checkpoint", str(tmp_path), "--prompt", "x"], "no flan_jax checkpoint here"),
        (["--checkpoint", str(tmp_path / "trainer"), "--prompt", "x"], "stores no model config; pass the checkpoint"),
        (["--checkpoint", str(tmp_path / "trainer"), "--base", str(setup["ckpt"]), "--prompt", "x"],
         "cannot read the checkpoint"),
        (["--checkpoint", str(setup["ckpt"]), "--prompts", str(tmp_path / "bad.jsonl")], f"{tmp_path / 'bad.jsonl'}:2: not JSON"),
        (["--checkpoint", str(setup["ckpt"]), "--prompts", str(tmp_path / "nofield.jsonl")], "nofield.jsonl:1: needs a string field"),
        (["--checkpoint", str(setup["ckpt"]), "--prompts", str(tmp_path / "none.jsonl")], "prompts file not found"),
        (["--checkpoint", str(setup["ckpt"]), "--template", "flan_mini.mini_add:eval_t0", "--prompt", "1 + 2"],
         "with --template a prompt is a JSON object"),
        (["--checkpoint", str(setup["ckpt"]), "--decode", "sample", "--top_p", "0", "--prompt", "x"], "need 0 < top_p"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(["generate", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("flan-jax generate: error: ") and message in err[0], (argv, err)
