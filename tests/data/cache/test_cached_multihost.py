"""A cached stream over several hosts, simulated in one process (process index and count passed in).

Contract (docs/cache.md): host h of H reads global blocks h, h + H, h + 2H, ... and each block
packs alone, so host h's rows are exactly the rows a single-host run packs for those global
blocks. Each host's (block, row) is gathered into one checkpoint entry; every host resumes from
its own entry bit-exactly, with any worker count, at any data position.
"""
import json

import numpy as np
import pytest

from flan_jax.data.cache import cached_pipeline
from flan_jax.data.features import converters as features
from flan_jax.errors import FlanJaxError
from flan_jax.train import distributed

TASKS = ("flan_mini.mini_add:zs_noopt", "flan_mini.mini_vowel_start:zs_opt")
LENGTHS = (("inputs", 48), ("targets", 8))
BLOCK, HOST_BATCH = 16, 4


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    from flan_jax.data.cache import writer as cache
    from flan_jax.data.tasks import catalogue
    from flan_jax.data.features import vocab
    # the default vocabulary: another test file in this process may have registered these tasks
    # with a test vocabulary
    catalogue.register_flan_mini_tasks(vocab.load_vocabulary(vocab.default_vocabulary_path()),
                                   datasets=["mini_add", "mini_vowel_start"])
    out = tmp_path_factory.mktemp("cache")
    cache.cache_tasks(TASKS, str(out), splits=("train",), max_examples=120)
    return str(out)


def _spec(cache_dir, host=0, hosts=1):
    stream = cached_pipeline.stream_spec(cache_dir, dict(zip(TASKS, (0.6, 0.4))), "train", seed=3,
                                         shard_index=host, num_shards=hosts)
    return cached_pipeline.BlockSpec(stream, "decoder", LENGTHS, block_size=BLOCK)


def _equal(a, b, what):
    assert sorted(a) == sorted(b), what
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{what}: {k}")


@pytest.mark.parametrize("hosts", [2, 3])
def test_each_host_reads_its_global_blocks_of_the_single_host_stream(cache_dir, hosts):
    """Reference: the single-host spec's rows of global blocks h, h + H, ... concatenated and cut
    into batches of HOST_BATCH rows."""
    single = _spec(cache_dir)
    for h in range(hosts):
        it = cached_pipeline.CachedBatches(_spec(cache_dir, h, hosts), HOST_BATCH)
        got = [next(it) for _ in range(6)]
        rows, g = [], h
        while len(rows) < 6 * HOST_BATCH:
            rows += cached_pipeline.block_rows(single, g)[0]
            g += hosts
        for i, batch in enumerate(got):
            want = features.assemble_rows(rows[i * HOST_BATCH:(i + 1) * HOST_BATCH], "decoder",
                                          dict(LENGTHS), packed=True, bos_id=0)
            _equal(batch, want, f"host {h} of {hosts}, batch {i}")
    # the hosts' blocks are disjoint and together the global stream: hosts * k blocks = blocks 0..hosts*k-1
    examples = [tuple(ex["targets"].tolist()) for g in range(2 * hosts)
                for ex in cached_pipeline.mixed_examples(single.stream, g, BLOCK)]
    sharded = [tuple(ex["targets"].tolist()) for h in range(hosts) for b in range(2)
               for ex in cached_pipeline.mixed_examples(_spec(cache_dir, h, hosts).stream, b, BLOCK)]
    assert sorted(sharded) == sorted(examples)


def _save_all(states):
    """What train() stores: every host calls gather_data_states at the same step (the gather
    simulated), process 0's entry goes to the checkpoint's JSON."""
    stacked = np.asarray([[s["block"], s["row"]] for s in states], np.int32)
    entries = [distributed.gather_data_states(s, process_index=h, process_count=len(states),
                                              gather=lambda mine: stacked)
               for h, s in enumerate(states)]
    assert all(e == entries[0] for e in entries)
    return json.dumps(entries[0])


@pytest.mark.slow
def test_every_host_resumes_exactly_far_into_the_stream_with_another_worker_count(cache_dir):
    hosts, far = 2, {"block": 10 ** 6, "row": 0}  # 1.6e7 examples in (block 2e6 + h globally)
    specs = [_spec(cache_dir, h, hosts) for h in range(hosts)]
    runs = [cached_pipeline.CachedBatches(s, HOST_BATCH, state=far) for s in specs]
    want = [[next(r) for _ in range(9)] for r in runs]  # uninterrupted
    # the "killed" run: 5 batches per host, then the checkpoint entry
    killed = [cached_pipeline.CachedBatches(s, HOST_BATCH, state=far) for s in specs]
    for it in killed:
        for _ in range(5):
            next(it)
    states = [it.state() for it in killed]
    saved = json.loads(_save_all(states))
    assert saved["num_hosts"] == hosts and [saved["hosts"][h] for h in range(hosts)] == states
    for h in range(hosts):  # restarted with 1 worker process instead of none
        state = distributed.host_data_state(saved, process_index=h, process_count=hosts)
        resumed = cached_pipeline.CachedBatches(specs[h], HOST_BATCH, state=state, workers=1)
        try:
            for i in range(5, 9):
                _equal(next(resumed), want[h][i], f"host {h}, batch {i}")
        finally:
            resumed.close()


def test_host_positions_differ_when_blocks_pack_to_different_row_counts(cache_dir):
    """Why one entry per host: after the same number of batches the hosts are at other rows."""
    hosts, batches = 2, 5
    states = []
    for h in range(hosts):
        spec = _spec(cache_dir, h, hosts)
        it = cached_pipeline.CachedBatches(spec, HOST_BATCH)
        for _ in range(batches):
            next(it)
        states.append(it.state())
        # by hand: walk the host's blocks' row counts for 5 x 4 rows
        left, block = batches * HOST_BATCH, 0
        while left >= len(cached_pipeline.block_rows(spec, block)[0]):
            left -= len(cached_pipeline.block_rows(spec, block)[0])
            block += 1
        assert states[-1] == {"block": block, "row": left}
    assert states[0] != states[1]


def test_a_single_host_entry_and_the_older_bare_state_restore():
    saved = distributed.gather_data_states({"block": 7, "row": 2}, process_index=0, process_count=1)
    assert saved == {"num_hosts": 1, "hosts": [{"block": 7, "row": 2}]}
    assert distributed.host_data_state(saved, process_index=0, process_count=1) == {"block": 7, "row": 2}
    assert distributed.host_data_state({"block": 7, "row": 2}, process_index=0, process_count=1) == \
        {"block": 7, "row": 2}
    assert distributed.host_data_state(None, process_index=0, process_count=4) is None


@pytest.mark.parametrize("saved, count, match", [
    ({"num_hosts": 2, "hosts": [{"block": 1, "row": 0}] * 2}, 4, "saved by 2 host.*this run has 4"),
    ({"block": 1, "row": 0}, 2, "saved by 1 host.*this run has 2"),
    ({"num_hosts": 2, "hosts": [{"block": 1}, {"block": 1, "row": 0}]}, 2, "host 0's data position"),
])
def test_bad_saved_positions_are_refused(saved, count, match):
    with pytest.raises(FlanJaxError, match=match):
        distributed.host_data_state(saved, process_index=0, process_count=count, where="ckpt/5")


def test_a_bad_gather_or_an_overflowing_position_is_refused():
    with pytest.raises(FlanJaxError, match="want \\(2, 2\\)"):
        distributed.gather_data_states({"block": 1, "row": 0}, process_index=0, process_count=2,
                                       gather=lambda mine: mine[None])
    with pytest.raises(FlanJaxError, match="int32"):
        distributed.gather_data_states({"block": 2 ** 31, "row": 0}, process_index=0, process_count=1)
