"""Cluster lookup for the bundled procedural benchmarks (flan-mini, flan-nl): one module per
cluster, imported on first use, so importing the benchmark package loads no cluster.

    FLAN_NL = ClusterModules("flan-nl", "flan_jax.data.templates.flan_nl", {"nl_nli": "nli", ...})
    FLAN_NL.cluster_datasets("nl_nli")  -> the DatasetSpecs in flan_nl/nli.py (`DATASETS`)
    FLAN_NL.all_datasets()              -> every DatasetSpec, clusters in the mapping's order
    FLAN_NL.cluster_datasets("nope")    -> UnknownClusterError naming the known clusters
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping

from flan_jax.data.templates.spec import DatasetSpec
from flan_jax.errors import FlanJaxError


class UnknownClusterError(FlanJaxError):
    """A cluster name that the benchmark does not have."""


@dataclasses.dataclass(frozen=True)
class ClusterModules:
    benchmark: str                # shown in errors, e.g. "flan-nl"
    package: str                  # the package holding one module per cluster
    modules: Mapping[str, str]    # cluster name -> module name inside `package`

    def cluster_datasets(self, name: str) -> tuple[DatasetSpec, ...]:
        """The DatasetSpecs of one cluster (its module's `DATASETS`)."""
        if name not in self.modules:
            raise UnknownClusterError(
                f"unknown {self.benchmark} cluster {name!r}; known: {', '.join(self.modules)}")
        return importlib.import_module(f"{self.package}.{self.modules[name]}").DATASETS

    def all_datasets(self) -> tuple[DatasetSpec, ...]:
        """Every DatasetSpec, clusters in the mapping's order, datasets in module order."""
        return tuple(spec for cluster in self.modules for spec in self.cluster_datasets(cluster))
