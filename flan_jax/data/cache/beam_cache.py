"""The cache job on Apache Beam: `write_task` for every task, as seqio's own cache job distributes
its work (seqio/scripts/cache_tasks_main.py). Locally it runs on the DirectRunner; the same
pipeline runs on Dataflow, Flink or Spark with their pipeline options.

    flan-jax cache flan2022 --out /mnt/shared/cache --runner beam -- --runner=DataflowRunner ...

`--out` is a path every worker sees (a shared filesystem or a FUSE-mounted bucket): the writer
takes file paths, not gs:// URLs.

Each Beam worker registers the tasks again (`register`, a picklable function such as
`functools.partial(register_mixture, "flan_mini_all")`) in its setup, then writes whole tasks; the
files are byte-identical to the process-pool job's (test: tests/data/cache/test_cache.py).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def run_beam(task_names: Sequence[str], cache_dir: str, *, splits: Sequence[str] = ("train",),
             max_examples: int | None = None, register: Callable[[], Any] | None = None,
             pipeline_args: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Write every task with a Beam pipeline; returns the manifests as written, in task order."""
    import apache_beam as beam  # noqa: PLC0415
    from apache_beam.options.pipeline_options import PipelineOptions  # noqa: PLC0415

    class WriteTask(beam.DoFn):
        def setup(self) -> None:
            if register is not None:
                register()

        def process(self, task: str):
            from flan_jax.data.cache import writer as cache  # noqa: PLC0415

            yield cache.write_task(task, cache_dir, tuple(splits), max_examples)["task"]

    from flan_jax.data.cache import writer as cache  # noqa: PLC0415

    options = PipelineOptions(list(pipeline_args) or ["--runner=DirectRunner"])
    with beam.Pipeline(options=options) as p:
        _ = p | beam.Create(list(task_names)) | beam.Reshuffle() | beam.ParDo(WriteTask())
    # the workers' results live in the cache itself: its manifests (written last by each task)
    return [cache.load_manifest(cache_dir, t) for t in task_names]
