"""Per-op profile of one jitted call: where a train step spends its time (docs/benchmarks.md).

The method: run the call once under `jax.profiler.trace(..., create_perfetto_trace=True)`, sum
the duration of the trace's XLA op events (those with an `hlo_op` argument) per HLO instruction,
and join each instruction to the compiled HLO's `op_name` metadata (the JAX/Flax scope path;
the train step names its `loss` and `optimizer` scopes, train/step.py). Durations are wall time of the op on its
thread; ops that run in parallel on the two cores are both counted, so shares are of op time,
not of the step's wall time.

Categories, by scope (first rule that matches): optimizer, attention, mlp, head + loss
(`loss` or `lm_head`), embedding, norms, other (residual adds, mask building, data movement). Each is
split into matmul ops (`dot` / library `ynn_fusion` instructions) and the rest.

    from bench import op_profile
    rows, top = op_profile.profile(step, state, batch, out_dir="/tmp/trace")
    print(op_profile.table(rows, top))
"""
from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import jax

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*\S+\s+([\w\-]+)\(.*?metadata=\{([^}]*)\}")
_FIELD = re.compile(r'(\w+)="([^"]*)"')


def hlo_metadata(hlo_text: str) -> dict[str, dict[str, str]]:
    """Instruction name -> {"opcode", "op_name"} from compiled HLO text. Example line:
    `%dot.3 = f32[8,16]{1,0} dot(%a, %b), ..., metadata={op_name="jit(f)/mlp/dot_general"
    stack_frame_id=4}` -> {"dot.3": {"opcode": "dot", "op_name": "jit(f)/mlp/dot_general"}}."""
    out = {}
    for line in hlo_text.splitlines():
        m = _INSTRUCTION.match(line)
        if m:
            fields = dict(_FIELD.findall(m.group(3)))
            out[m.group(1)] = {"opcode": m.group(2), "op_name": fields.get("op_name", "")}
    return out


# ops whose events span the ops they run (a while loop's body, a branch): not counted twice
CONTROL_FLOW = frozenset({"while", "cond", "conditional", "call"})


def trace_op_seconds(trace_dir: str) -> dict[str, float]:
    """HLO instruction name -> summed seconds of its XLA op events in the perfetto trace under
    `trace_dir` (the newest one). Raises FileNotFoundError when there is no trace."""
    files = sorted(glob.glob(os.path.join(trace_dir, "**", "*perfetto_trace.json.gz"), recursive=True),
                   key=os.path.getmtime)
    if not files:
        raise FileNotFoundError(f"{trace_dir}: no perfetto trace")
    with gzip.open(files[-1]) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    seconds: dict[str, float] = collections.defaultdict(float)
    for e in events:
        op = e.get("args", {}).get("hlo_op") if e.get("ph") == "X" else None
        if op and not op.split(".")[0] in CONTROL_FLOW:
            seconds[op] += float(e["dur"]) * 1e-6  # microseconds
    return dict(seconds)


def scopes(op_name: str) -> list[str]:
    """The scope names of an op_name, transformation wrappers removed:
    "jit(step)/while/body/transpose(jvp(loss))/dot_general" -> [..., "body", "loss", "dot_general"]."""
    return [re.sub(r"^(?:\w+\()+|\)+$", "", part) for part in op_name.split("/")]


def category(op_name: str) -> str:
    """The part of the step an op belongs to, from its scope names (module docstring rules)."""
    names = scopes(op_name)
    for part, keys in (("optimizer", ("optimizer",)), ("attention", ("attention",)), ("mlp", ("mlp",)),
                       ("head + loss", ("loss", "lm_head")), ("embedding", ("embed",))):
        if any(k in names for k in keys):
            return part
    return "norms" if any("norm" in n for n in names) else "other"


def is_matmul(name: str, opcode: str) -> bool:
    return opcode in ("dot", "convolution") or "dot" in name or name.startswith("ynn_fusion")


def rows(metadata: dict[str, dict[str, str]], seconds: dict[str, float]) -> list[tuple[str, str, float]]:
    """[(category, "matmul" | "other", seconds)], largest first; ops missing from the HLO
    metadata (e.g. copies XLA adds) count as ("other", "other")."""
    total: dict[tuple[str, str], float] = collections.defaultdict(float)
    for name, s in seconds.items():
        meta = metadata.get(name, {"opcode": "", "op_name": ""})
        kind = "matmul" if is_matmul(name, meta["opcode"]) else "other"
        total[(category(meta["op_name"]), kind)] += s
    return sorted(((c, k, s) for (c, k), s in total.items()), key=lambda r: -r[2])


def top_ops(metadata: dict[str, dict[str, str]], seconds: dict[str, float], n: int = 12
            ) -> list[tuple[str, str, str, float]]:
    """The n longest ops: [(instruction, opcode, op_name, seconds)]."""
    out = [(name, metadata.get(name, {}).get("opcode", ""), metadata.get(name, {}).get("op_name", ""), s)
           for name, s in seconds.items()]
    return sorted(out, key=lambda r: -r[3])[:n]


def profile(fn: Callable, *args: Any, out_dir: str) -> tuple[list[tuple[str, str, float]], list[tuple]]:
    """Run `fn(*args)` once under the profiler; returns (`rows(...)`, `top_ops(...)`). `fn`: a compiled
    function (`jax.stages.Compiled`) or anything with `.lower(*args)` (a `jax.jit` function, the
    trainer's step), compiled first, outside the trace. Donated args are used up."""
    compiled = fn if hasattr(fn, "as_text") else fn.lower(*args).compile()
    metadata = hlo_metadata(compiled.as_text())
    with jax.profiler.trace(out_dir, create_perfetto_trace=True):
        jax.block_until_ready(fn(*args))
    seconds = trace_op_seconds(out_dir)
    return rows(metadata, seconds), top_ops(metadata, seconds)


def table(profile_rows: Iterable[tuple[str, str, float]], top: Iterable[tuple] = ()) -> str:
    """Markdown tables: per (category, kind) seconds and share of the op time; then the
    longest ops with their scope."""
    profile_rows = list(profile_rows)
    total = sum(s for _, _, s in profile_rows) or 1.0
    lines = ["| part | ops | op time (s) | share |", "|---|---|---|---|"]
    lines += [f"| {c} | {k} | {s:.2f} | {s / total:.1%} |" for c, k, s in profile_rows]
    if top:
        lines += ["", "| op | opcode | scope | s |", "|---|---|---|---|"]
        lines += [f"| {name} | {opcode} | {op_name[-90:]} | {s:.3f} |" for name, opcode, op_name, s in top]
    return "\n".join(lines)
