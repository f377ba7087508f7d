"""A bar chart of a mixture's per-cluster shares (`flan-jax mixture --plot`, the main job).

    plot_shares("flan_nl_all", leaves, "shares.png")   # leaves: mixtures.resolve(...)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def plot_shares(name: str, leaves: Sequence[Any], path: str) -> None:
    """A horizontal bar chart of the per-cluster shares of a mixture."""
    import matplotlib

    from flan_jax.data.mixing import mixtures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = mixtures.group_shares(leaves, "cluster")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(clusters) + 1.2))
    labels = list(clusters)[::-1]
    ax.barh(labels, [100 * clusters[c] for c in labels], color="#4c72b0")
    ax.set_xlabel("share of examples (%)")
    ax.set_title(f"mixture {name}: {len(leaves)} tasks")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
