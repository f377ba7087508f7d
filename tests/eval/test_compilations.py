"""eval/compilations.py counts the programs compiled inside a block, nested counters included."""
import jax
import numpy as np

from flan_jax.eval import compilations


def test_counts_new_shapes_only_and_nests():
    f = jax.jit(lambda x: x * 2 + 1)
    with compilations.counted() as outer:
        f(np.ones(3))
        with compilations.counted() as inner:
            f(np.ones(3))  # cached: nothing compiled
            f(np.ones(5))  # a new shape
        f(np.ones(7))
    assert len(inner) == 1 and len(outer) == 3
    assert all(s > 0 for s in outer)
    f(np.ones(9))  # outside every counter
    assert len(outer) == 3
