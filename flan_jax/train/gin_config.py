"""Gin for the trainer: the search path, parsing files and bindings, t5x-style `--gin.` flags.

    parse_gin(["experiments/flan_mini_t5_tiny.gin"], ["train.num_steps = 50"])
    accept_gin_flags(parser)   # parser now takes --gin.KEY=VALUE into args.gin_bindings

Gin file paths are looked up in: extra paths, `$FLAN_JAX_GIN_PATH` (os.pathsep separated), the
repo's `gin_configs/` (source checkout or editable install), then
`<data prefix>/share/flan_jax/gin_configs` (a non-editable `pip install`), and the current
directory. Every bad file or binding is one FlanJaxError line naming the file:line or binding.
"""
from __future__ import annotations

import argparse
import difflib
import importlib.util
import inspect
import os
import re
import sys

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

    import flan_jax.data.features.vocab  # noqa: F401  (vocabulary_file.path: the tasks' vocabulary)
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
            raise FlanJaxError(_unquoted_binding(e, binding) or
                               f"gin binding {binding!r}: {_with_suggestion(e)}") from None


# gin's parser hands a bare word to ast.literal_eval: "malformed node or string on line 1:
# <ast.Name object at 0x...>\n    Failed to parse token 'abc' (line 1)"
_BARE_WORD = re.compile(r"Failed to parse token '(?P<token>[^']*)'")


def _quoted(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def _unquoted_binding(e: BaseException, binding: str) -> str | None:
    """"gin binding train.num_steps: abc is not a gin value ...; quote it: --gin.train.num_steps=
    "'abc'"" for a binding whose value is a bare word; None for any other error."""
    if "malformed node or string" not in str(e) or "=" not in binding:
        return None
    key, value = (x.strip() for x in binding.split("=", 1))
    return (f"gin binding {key}: {value} is not a gin value (text must be quoted; numbers, True/False/None, "
            f"lists, dicts, @configurable and %MACRO are bare): write --gin.{key}=\"{_quoted(value)}\" on "
            f"the command line, or {key} = {_quoted(value)} in a gin file")


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
    bare = _BARE_WORD.search(str(e)) if "malformed node or string" in str(e) else None
    if bare:  # a gin file's bare word (its place is in `where`)
        return (f"{bare['token']} is not a gin value (text must be quoted: {_quoted(bare['token'])}; "
                "@name refers to a configurable, %NAME to a macro)")
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
