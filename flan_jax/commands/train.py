"""`flan-jax train`: parse gin files and bindings (t5x flag conventions), then call `train()`.

    flan-jax train --gin_file=experiments/flan_mini_t5_tiny.gin \\
        --gin.MODEL_DIR="'/tmp/flan_t5_tiny'" --gin.train.num_steps=50

* `--gin_file` may repeat; files are parsed in order, then every binding in command-line order.
* `--gin.KEY=VALUE` is the gin binding `KEY = VALUE` (VALUE is a gin literal: quote strings,
  e.g. --gin.MODEL_DIR="'/tmp/run'"); `--gin_bindings='KEY = VALUE'` is the same, t5x style.
* `--model_dir=DIR` is a shortcut for --gin.MODEL_DIR="'DIR'".
* Multi-host: run the same command on every host with `--coordinator_address=HOST:PORT
  --num_processes=N --process_id=I` (or the JAX_* environment variables, or `--multihost_auto`
  on a Cloud TPU pod); each host reads its own data shard (train/distributed.py).
* Gin file paths are looked up in: `--gin_search_paths` (comma separated), `$FLAN_JAX_GIN_PATH`
  (os.pathsep separated), the repo's `gin_configs/` (source checkout or editable install), then
  `<data prefix>/share/flan_jax/gin_configs` (where a non-editable `pip install` puts the files:
  sysconfig's "data" path, or sys.prefix),
  and the current directory.

`python -m flan_jax.train ...` is the same command.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Any

from flan_jax.errors import FlanJaxError
from flan_jax.train.gin_config import accept_gin_flags, parse_gin

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gin_file", action="append", default=[], help="gin file (repeatable)")
    parser.add_argument("--gin_bindings", action="append", default=[], help="'KEY = VALUE' (repeatable)")
    parser.add_argument("--gin_search_paths", default="", help="comma-separated extra gin search dirs")
    parser.add_argument("--model_dir", default=None, help="shortcut for --gin.MODEL_DIR")
    parser.add_argument("--dry_run", action="store_true",
                        help="build model, optimizer, mesh and state shapes, then stop (no training)")
    # multi-host (train/distributed.py): unset flags fall back to JAX_COORDINATOR_ADDRESS,
    # JAX_NUM_PROCESSES, JAX_PROCESS_ID; one process needs none of them.
    parser.add_argument("--coordinator_address", default=None, help="host:port of process 0")
    parser.add_argument("--num_processes", type=int, default=None)
    parser.add_argument("--process_id", type=int, default=None)
    parser.add_argument("--multihost_auto", action="store_true",
                        help="let JAX detect the cluster (Cloud TPU pods, SLURM)")
    accept_gin_flags(parser)


def _drop_traceback(record: logging.LogRecord) -> bool:
    """orbax's ERROR records (absl's logger, and asyncio's "Task exception was never retrieved"
    for orbax's writer tasks) are dropped: each failure they describe is raised by
    checkpoint.py as one FlanJaxError line. Other records lose their tracebacks. (absl records
    carry absl's own file as pathname, so orbax is looked for on the stacks.)"""
    if record.levelno >= logging.ERROR and _from_orbax(record):
        return False
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    return True


_ORBAX = f"{os.sep}orbax{os.sep}"


def _from_orbax(record: logging.LogRecord) -> bool:
    if _failed_tensorstore_write(record.exc_info[1] if record.exc_info else None):
        return True
    frame = sys._getframe(1)  # noqa: SLF001  (the logging call's stack)
    while frame is not None:
        if _ORBAX in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return _orbax_traceback(record.exc_info[2] if record.exc_info else None)


def _failed_tensorstore_write(exc: BaseException | None) -> bool:
    """A write of the checkpoint's tensorstore that failed with an OS error (its text carries
    `os_error_code=...`): when orbax gives up on a save, asyncio logs the futures of the other
    pending writes as "Future exception was never retrieved" from the garbage collector, with no
    orbax frame on the stack or in the traceback (seen once in a full test run on 8 fake devices)."""
    return exc is not None and "os_error_code" in str(exc)


def _orbax_traceback(tb: Any) -> bool:
    while tb is not None:
        if _ORBAX in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def _is_writer_shutdown_noise(exc: BaseException | None, tb: Any) -> bool:
    """After a failed checkpoint write orbax closes its asyncio loop while tensorstore still
    completes the other writes; each completion's `call_soon_threadsafe` then raises "Event loop
    is closed", printed from tensorstore's threads (one traceback per pending write)."""
    return (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed") or _orbax_traceback(tb)


def _quiet_orbax_writer_failures() -> None:
    """Keep a failed checkpoint write to our one error line: orbax's log records are filtered
    (`_drop_traceback`) and the tracebacks its writer threads print are dropped. Installed
    once per process (the CLI may run several commands in one process, e.g. in tests)."""
    absl_log = logging.getLogger("absl")
    absl_log.setLevel(logging.WARNING)
    if _drop_traceback in absl_log.filters:
        return
    absl_log.addFilter(_drop_traceback)
    logging.getLogger("asyncio").addFilter(_drop_traceback)
    plain_excepthook, plain_thread_hook, plain_unraisable = sys.excepthook, threading.excepthook, sys.unraisablehook

    def excepthook(kind, exc, tb):
        if not _is_writer_shutdown_noise(exc, tb):
            plain_excepthook(kind, exc, tb)

    def thread_hook(args):
        if not _is_writer_shutdown_noise(args.exc_value, args.exc_traceback):
            plain_thread_hook(args)

    def unraisable(args):
        if not _is_writer_shutdown_noise(args.exc_value, args.exc_traceback):
            plain_unraisable(args)

    sys.excepthook, threading.excepthook, sys.unraisablehook = excepthook, thread_hook, unraisable


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    _quiet_orbax_writer_failures()
    bindings = list(args.gin_bindings)
    if args.model_dir:
        bindings.insert(0, f"MODEL_DIR = {args.model_dir!r}")
    if not args.gin_file:
        raise FlanJaxError("no --gin_file given (e.g. --gin_file=experiments/flan_mini_t5_tiny.gin)")
    extra = [p for p in args.gin_search_paths.split(",") if p]
    from flan_jax.train import distributed

    distributed.initialize(args.coordinator_address, args.num_processes, args.process_id,
                           auto=args.multihost_auto)  # before anything asks JAX for devices
    parse_gin(args.gin_file, bindings, extra)
    from flan_jax.train.train import train

    try:
        result = train(dry_run=args.dry_run)
    except FlanJaxError as e:  # drop gin's "In call to configurable" line: one-line CLI errors
        raise FlanJaxError(str(e).split("\n  In call to configurable")[0]) from None
    if args.dry_run:
        print("dry run: configuration builds")
    elif not result.losses:  # no step ran: no loss to report
        print(f"{result.note}; nothing written")
    else:
        print(f"trained {len(result.losses)} steps to step {result.step}; last loss {result.losses[-1]:.4f}")
    return 0
