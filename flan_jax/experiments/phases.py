"""Completed phases of a multi-phase job, recorded so a restarted job resumes where it stopped.

    run_dir/phases/job.json          the job's settings (every gin binding, sorted), written first
    run_dir/phases/<phase>.json      one per completed phase: its outputs (JSON) and minutes

A phase's marker is written after everything the phase writes elsewhere (reports, checkpoints),
to a temporary file that is flushed, fsynced and renamed: a process killed at any point leaves
either no marker (the phase runs again; what it wrote is overwritten or, for a training run,
resumed from its checkpoint) or a complete one (the phase is skipped and its outputs are read
back). A marker that does not parse was not written by this module: an error naming the file.

A run folder whose job.json holds other settings is refused (FlanJaxError, one line naming the
first setting that differs): phases of two different jobs never mix.

    phases = Phases(run_dir, {"held_out": "nl_nli", "bindings": [...]})
    before = phases.done("eval_before")           # None, or the recorded outputs
    if before is None:
        before = {"correct": score(...)}
        phases.record("eval_before", before, minutes=1.5)
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flan_jax.errors import FlanJaxError

FOLDER = "phases"
JOB = "job.json"


def write_json_atomically(path: str | os.PathLike, value: Any) -> None:
    """`path` holds the whole JSON text of `value` or is left as it was: a temporary file in the
    same folder, flushed and fsynced, then renamed over `path` (rename is atomic on POSIX)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Phases:
    """The phase markers of one run folder (see the module docstring)."""

    def __init__(self, run_dir: str | os.PathLike, settings: Mapping[str, Any]) -> None:
        self.folder = Path(run_dir) / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = json.loads(json.dumps(settings))  # JSON-normalised (tuples -> lists)
        job = self.folder / JOB
        stored = self._read(job)
        if stored is None:
            write_json_atomically(job, settings)
        elif stored != settings:
            key = next(k for k in sorted(set(stored) | set(settings)) if stored.get(k) != settings.get(k))
            raise FlanJaxError(f"run folder {Path(run_dir)} holds a job with other settings ({key}: "
                               f"{_short(stored.get(key))} then, {_short(settings.get(key))} now; {job}); "
                               "use another run folder (--out)")

    def _read(self, path: Path) -> Any:
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise FlanJaxError(f"{path}: not a complete phase record ({type(e).__name__}); it was not "
                               "written by this job: move it away to run that phase again") from None

    def done(self, name: str) -> dict[str, Any] | None:
        """The outputs recorded for phase `name`, or None when it has not completed."""
        record = self._read(self.folder / f"{name}.json")
        return None if record is None else dict(record["outputs"], minutes=record.get("minutes", 0.0))

    def completed(self) -> list[str]:
        """Names of the completed phases, in the order they completed."""
        names = [p for p in self.folder.glob("*.json") if p.name != JOB]
        return [p.stem for p in sorted(names, key=lambda p: p.stat().st_mtime_ns)]

    def record(self, name: str, outputs: Mapping[str, Any], minutes: float = 0.0) -> None:
        """Mark phase `name` complete with its JSON-able `outputs` (atomically, last)."""
        write_json_atomically(self.folder / f"{name}.json", {"outputs": dict(outputs), "minutes": minutes})


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
