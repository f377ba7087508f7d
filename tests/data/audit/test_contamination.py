"""Decontamination recall and precision on a planted set: copies of evaluation items of every
length and count (exact, with whitespace/case/punctuation changes, short, repeated, wrapped in a
template) are flagged, and training examples that only share template text, answers or a few
words with an item are not. The figures are printed in the failure message."""
import re

import numpy as np

from flan_jax.data.audit import contamination, findings as audit

VOCAB = np.array([f"w{i}" for i in range(20000)])
EVAL_TEMPLATES = {"ev_long": "Question: {q}\nOPTIONS:\n- yes\n- no\nAnswer:", "ev_short": "Read this and answer. {q}",
                  "ev_raw": "{q}"}
TRAIN_TEMPLATES = {"tr_a": "Here is a request from a user. {q} Reply below.", "tr_b": "Instruction: respond carefully.\n\n{q}",
                   "tr_c": "{q}"}


def _text(rng, n):
    return " ".join(rng.choice(VOCAB, size=n))


def _planted():
    """(training examples, evaluation examples, {training id: kind} of the planted copies)."""
    rng = np.random.default_rng(7)
    items = {"ev_long": [_text(rng, int(rng.integers(20, 31))) + "?" for _ in range(20)],
             "ev_short": [_text(rng, int(rng.integers(3, 10))) + "." for _ in range(20)],
             "ev_raw": [_text(rng, int(rng.integers(7, 13))) for _ in range(10)]}
    evaluation = [audit.AuditExample(t, "validation", i, EVAL_TEMPLATES[t].format(q=q), _text(rng, 2))
                  for t, qs in items.items() for i, q in enumerate(qs)]
    rows = {t: [(f.format(q=_text(rng, int(rng.integers(5, 40)))), _text(rng, 3)) for _ in range(100)]
            for t, f in TRAIN_TEMPLATES.items()}
    kinds: dict[tuple[str, int], str] = {}

    def plant(task, inputs, kind, targets="w1 w2"):
        kinds[(task, len(rows[task]))] = kind
        rows[task].append((inputs, targets))

    ev = {(e.task, e.index): e for e in evaluation}
    long, short, raw = items["ev_long"], items["ev_short"], items["ev_raw"]
    seven = next(q for q in short if len(q.split()) == 7)
    for k in range(3):  # 1. exact copies of the whole evaluation prompt
        plant("tr_c", ev[("ev_long", k)].inputs, "exact")
        plant("tr_c", ev[("ev_short", 10 + k)].inputs, "exact")
    plant("tr_c", seven, "exact (7 words)")
    # 2. whitespace, case and punctuation changes
    plant("tr_c", ev[("ev_long", 3)].inputs.upper(), "case")
    plant("tr_c", re.sub(" ", "   ", ev[("ev_raw", 0)].inputs), "whitespace")
    plant("tr_c", ev[("ev_raw", 1)].inputs.replace(" ", ", ") + "!!", "punctuation")
    plant("tr_c", "\n".join(long[4].split()), "whitespace")
    # 3. short items (3 or 4 words) copied alone and inside a training template
    tiny = [q for q in short if len(q.split()) <= 4][:3]
    assert len(tiny) >= 2
    for q in tiny:
        plant("tr_c", q.upper(), "short")
        plant("tr_b", TRAIN_TEMPLATES["tr_b"].format(q=q), "short, template-wrapped")
    # 4. repeated: a 25-word item copied 11 times, a 10-word item 30 times
    rep = next(q for q in long if len(q.split()) >= 25)
    for _ in range(11):
        plant("tr_a", TRAIN_TEMPLATES["tr_a"].format(q=rep), "repeated x11")
    for _ in range(30):
        plant("tr_c", raw[2], "repeated x30")
    # 5. wrapped in another template (the evaluation template dropped), answers appended
    for k in range(5, 9):
        plant("tr_a", TRAIN_TEMPLATES["tr_a"].format(q=long[k]), "template-wrapped")
        plant("tr_b", TRAIN_TEMPLATES["tr_b"].format(q=short[k]), "template-wrapped", targets=_text(rng, 2))
    # negatives: the evaluation template around other text, an item's first words only, an answer
    for k in range(10):
        rows["tr_c"].append((EVAL_TEMPLATES["ev_long"].format(q=_text(rng, 20)), "yes"))
        rows["tr_c"].append((EVAL_TEMPLATES["ev_short"].format(q=_text(rng, 6)), "no"))
    for q in [q for q in short if len(q.split()) >= 7][:4]:
        rows["tr_a"].append((TRAIN_TEMPLATES["tr_a"].format(q=" ".join(q.split()[:3]) + " " + _text(rng, 8)), "x"))
    rows["tr_c"].append((ev[("ev_long", 0)].targets, ev[("ev_long", 0)].targets))
    train = [audit.AuditExample(t, "train", i, x, y) for t, rs in rows.items() for i, (x, y) in enumerate(rs)]
    return train, evaluation, {f"{t}/train/{i}": kind for (t, i), kind in kinds.items()}


def _figures(flagged, planted):
    tp = flagged & set(planted)
    recall, precision = len(tp) / len(planted), len(tp) / max(len(flagged), 1)
    missed: dict[str, int] = {}
    for i in set(planted) - flagged:
        missed[planted[i]] = missed.get(planted[i], 0) + 1
    return recall, precision, (f"recall {recall:.3f} ({len(tp)}/{len(planted)}), precision {precision:.3f} "
                               f"({len(tp)}/{len(flagged)}); missed by kind {missed}; "
                               f"false alarms {sorted(flagged - set(planted))[:5]}")


def test_planted_copies_recall_and_precision():
    train, evaluation, planted = _planted()
    report = audit.contamination(train, evaluation)
    flagged = {a for c in report for a, _ in c["pairs"]}
    recall, precision, text = _figures(flagged, planted)
    print(text)
    assert recall == 1.0 and precision == 1.0, text


def test_each_copy_names_its_item():
    """Every flagged pair's training example holds all of the item's own words, in order."""
    train, evaluation, _ = _planted()
    by_id = {e.id: e for e in [*train, *evaluation]}
    pairs = [p for c in audit.contamination(train, evaluation) for p in c["pairs"]]
    assert pairs
    for train_id, eval_id in pairs:
        content = [w for w in audit.words(by_id[eval_id].inputs) if re.fullmatch(r"w\d+", w)]
        text = " " + " ".join(audit.words(by_id[train_id].inputs)) + " "
        assert " " + " ".join(content) + " " in text, (train_id, eval_id)


def test_template_text_is_never_contamination_and_a_single_item_task_keeps_the_bound():
    # an evaluation task of one example: its template cannot be told from its item, so a
    # 13-gram shared with more than MAX_NGRAM_EXAMPLES training examples is boilerplate there
    long = "please read the following text carefully and then answer the question that comes after it"
    rng = np.random.default_rng(3)
    train = [audit.AuditExample("t", "train", i, f"{long} {_text(rng, 20)}", "x") for i in range(30)]
    ev = [audit.AuditExample("e", "validation", 0, f"{long} {_text(rng, 20)}", "y")]
    assert contamination.contamination(train, ev) == []
    assert len(contamination.contamination(train[:5], ev)) == 1
