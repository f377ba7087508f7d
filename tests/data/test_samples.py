"""The bundled alpaca and chat sample files parse and have the documented shape."""
from __future__ import annotations

import importlib.resources
import json

SAMPLES = importlib.resources.files("flan_jax") / "assets" / "samples"
ROLES = {"system", "user", "assistant"}


def _lines(name: str) -> list[dict]:
    text = (SAMPLES / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_alpaca_sample_rows():
    rows = _lines("alpaca_sample.jsonl")
    assert len(rows) >= 25
    for i, row in enumerate(rows):
        assert set(row) == {"instruction", "input", "output"}, i
        assert all(isinstance(v, str) for v in row.values()), i
        assert row["instruction"].strip() and row["output"].strip(), i
    empty_inputs = sum(1 for r in rows if r["input"] == "")
    assert 0 < empty_inputs < len(rows)
    assert len({r["instruction"] for r in rows}) == len(rows)


def test_chat_sample_conversations():
    rows = _lines("chat_sample.jsonl")
    assert len(rows) >= 25
    multi_turn = 0
    for i, row in enumerate(rows):
        assert set(row) == {"messages"}, i
        messages = row["messages"]
        assert all(set(m) == {"role", "content"} for m in messages), i
        roles = [m["role"] for m in messages]
        assert set(roles) <= ROLES, i
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in messages), i
        turns = roles[1:] if roles[0] == "system" else roles
        assert "system" not in turns, f"row {i}: system only as the first message"
        assert turns[0::2] == ["user"] * len(turns[0::2]), i
        assert turns[1::2] == ["assistant"] * len(turns[1::2]), i
        assert turns[-1] == "assistant", i
        multi_turn += turns.count("assistant") > 1
    assert multi_turn >= 5
