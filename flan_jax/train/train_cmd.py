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
import difflib
import importlib.util
import inspect
import logging
import os
import re
import sys
import threading
from typing import Any

from flan_jax.errors import FlanJaxError
from flan_jax.shipped import shipped_dir_candidates

GIN_PATH_ENV = "FLAN_JAX_GIN_PATH"
GIN_PREFIX = "--gin."


def gin_search_paths(extra: list[str] | None = None) -> list[str]:
    """Directories searched for gin files and their `include`s, first match wins."""
    paths = list(extra or [])
    paths += [p for p in os.environ.get(GIN_PATH_ENV, "").split(os.pathsep) if p]
    for candidate in shipped_dir_candidates("gin_configs"):
        if candidate.is_dir():
            paths.append(str(candidate))
    return paths + [os.getcwd()]


def _package_file_exists(path: str) -> bool:
    """gin's check for `include 'pkg/file.gin'` inside an installed Python package, made safe:
    gin's own raises TypeError when the first path part is a namespace package (`models/`,
    `runs/` are common names: a tests/models folder on sys.path is enough)."""
    head, name = os.path.split(path)
    try:
        spec = importlib.util.find_spec(head.replace("/", ".")) if head else None
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None)
    return bool(origin) and os.path.isfile(os.path.join(os.path.dirname(origin), name))


def _make_gin_includes_safe() -> None:
    from gin import config as gin_config
    from gin import resource_reader

    gin_config._FILE_READERS[:] = [  # noqa: SLF001  (no public API to replace a reader's check)
        (reader, _package_file_exists if check is resource_reader.system_path_file_exists else check)
        for reader, check in gin_config._FILE_READERS]  # noqa: SLF001


def parse_gin(files: list[str], bindings: list[str], search_paths: list[str] | None = None) -> None:
    """Clear gin, add the search path, parse files then bindings; bad input -> FlanJaxError."""
    import gin

    import flan_jax.data.vocab  # noqa: F401  (vocabulary_file.path: the tasks' vocabulary)
    import flan_jax.train.optim  # noqa: F401  (register the trainer's configurables)
    import flan_jax.train.train  # noqa: F401

    _make_gin_includes_safe()
    gin.clear_config()
    paths = gin_search_paths(search_paths)
    for path in paths:
        gin.add_config_file_search_path(path)
    for name in files:
        found = [c for c in [name] + [os.path.join(p, name) for p in paths] if os.path.isfile(c)]
        if not found:
            raise FlanJaxError(f"gin file {name!r} not found (searched {', '.join(paths)})")
        try:
            gin.parse_config_file(found[0])
        except (OSError, ValueError, SyntaxError, ImportError, TypeError) as e:
            # OSError: an `include` that does not resolve
            raise gin_error(e, f"gin file {found[0]}") from None
    for binding in bindings:
        try:
            gin.parse_config(binding)
        except (ValueError, SyntaxError, ImportError, TypeError) as e:
            raise FlanJaxError(f"gin binding {binding!r}: {_with_suggestion(e)}") from None


# gin appends the place of a bad statement: '\n  In file "runs/x.gin", line 3\n    x.y = 1'
# (ParserError/SyntaxError carry it as `filename`/`lineno` instead).
_GIN_LOCATION = re.compile(r'In file "(?P<file>[^"]*)", line (?P<line>\d+)')


def gin_error(e: BaseException, fallback: str) -> FlanJaxError:
    """One line "gin file PATH:LINE: what is wrong[; did you mean X?]" from a gin exception;
    the file is the one holding the statement (an included file when the error is there)."""
    match = _GIN_LOCATION.search(str(e))
    if match:
        where = f"gin file {match['file']}:{match['line']}"
    elif getattr(e, "filename", None) and getattr(e, "lineno", None):
        where = f"gin file {e.filename}:{e.lineno}"
    else:
        where = fallback
    return FlanJaxError(f"{where}: {_with_suggestion(e)}")


def _with_suggestion(e: BaseException) -> str:
    hint = _suggestion(e)
    return f"{_first_line(e).rstrip('.')}{hint}" if hint else _first_line(e)


def _suggestion(e: BaseException) -> str:
    """"; did you mean X?" for a misspelt configurable or parameter, else ""."""
    import gin.config

    text = _first_line(e)
    configurables = dict(gin.config._REGISTRY.items())  # noqa: SLF001 (no public listing)
    missing = re.match(r"No configurable matching '([^']+)'", text)
    if missing:
        names = {c.name for c in configurables.values()} | set(configurables)
        close = difflib.get_close_matches(missing[1], sorted(names), n=1, cutoff=0.6)
    else:
        param = re.match(r"Configurable '([^']+)' doesn't have a parameter named '([^']+)'", text)
        if not param:
            return ""
        try:
            wrapped = gin.config._REGISTRY.get_match(param[1]).wrapped  # noqa: SLF001
            target = wrapped.__init__ if inspect.isclass(wrapped) else wrapped
            names = [n for n in inspect.signature(target).parameters if n != "self"]
        except (KeyError, ValueError, TypeError, AttributeError):
            return ""
        close = difflib.get_close_matches(param[2], names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


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


def accept_gin_flags(parser: argparse.ArgumentParser) -> None:
    """Make `parser` take t5x-style `--gin.KEY=VALUE` flags (any KEY), appended to
    `args.gin_bindings` after any `--gin_bindings` given; shared by train, compile and main."""
    parser.epilog = "Any --gin.KEY=VALUE argument is a gin binding (t5x convention)."
    plain_parse = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        # argparse cannot declare a flag family, so lift `--gin.KEY=VALUE` out first.
        args = list(sys.argv[1:] if args is None else args)
        gin_args = [a[len(GIN_PREFIX):] for a in args if a.startswith(GIN_PREFIX)]
        bad = [a for a in gin_args if "=" not in a]
        if bad:
            parser.error(f"--gin.{bad[0]}: expected --gin.KEY=VALUE")
        ns, rest = plain_parse([a for a in args if not a.startswith(GIN_PREFIX)], namespace)
        ns.gin_bindings = list(getattr(ns, "gin_bindings", None) or []) + gin_args
        return ns, rest

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


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
    frame = sys._getframe(1)  # noqa: SLF001  (the logging call's stack)
    while frame is not None:
        if _ORBAX in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return _orbax_traceback(record.exc_info[2] if record.exc_info else None)


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
