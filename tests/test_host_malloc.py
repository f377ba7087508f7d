"""The CLI's glibc malloc re-exec (flan_jax/host_malloc.py): when it applies, that it re-executes
the same command with the settings, that the settings remove the per-step page faults, and
that a bad switch value is a clear error."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from flan_jax import host_malloc
from flan_jax.errors import FlanJaxError

LINUX_GLIBC = {"system": "Linux", "libc": "glibc"}
needs_glibc = pytest.mark.skipif(not host_malloc.on_glibc(), reason="glibc only")


def test_missing_settings_on_linux_glibc_cpu():
    assert host_malloc.missing_settings({"JAX_PLATFORMS": "cpu"}, **LINUX_GLIBC) == {
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_THRESHOLD_": str(8 * 2**30),
        "MALLOC_TRIM_THRESHOLD_": str(16 * 2**30),
    }


def test_one_fake_device_still_counts_as_one():
    env = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1 --xla_x=y"}
    assert len(host_malloc.missing_settings(env, **LINUX_GLIBC)) == 3


def test_user_settings_are_kept():
    env = {"JAX_PLATFORMS": "cpu", "MALLOC_ARENA_MAX": "4"}
    assert sorted(host_malloc.missing_settings(env, **LINUX_GLIBC)) == [
        "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
    full = dict(env, MALLOC_MMAP_THRESHOLD_="1", MALLOC_TRIM_THRESHOLD_="1")
    assert host_malloc.missing_settings(full, **LINUX_GLIBC) == {}


@pytest.mark.parametrize("env,where", [
    ({}, LINUX_GLIBC),                                         # JAX may pick a TPU
    ({"JAX_PLATFORMS": "tpu"}, LINUX_GLIBC),
    ({"JAX_PLATFORMS": "cpu"}, {"system": "Darwin", "libc": ""}),
    ({"JAX_PLATFORMS": "cpu"}, {"system": "Linux", "libc": ""}),  # musl
    ({"JAX_PLATFORMS": "cpu", "FLAN_JAX_MALLOC_TUNING": "0"}, LINUX_GLIBC),
    ({"JAX_PLATFORMS": "cpu", "FLAN_JAX_MALLOC_REEXECUTED": "1"}, LINUX_GLIBC),  # never twice
    ({"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}, LINUX_GLIBC),
])
def test_no_settings_where_they_do_not_apply(env, where):
    assert host_malloc.missing_settings(env, **where) == {}


def test_hugepages_only_appends_the_tunable_to_the_users():
    env = {"JAX_PLATFORMS": "cpu"}
    assert host_malloc.missing_settings(env, hugepages_only=True, **LINUX_GLIBC) == {
        "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    mine = dict(env, GLIBC_TUNABLES="glibc.malloc.tcache_count=0")
    assert host_malloc.missing_settings(mine, hugepages_only=True, **LINUX_GLIBC) == {
        "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.malloc.hugetlb=1"}
    off = dict(env, GLIBC_TUNABLES="glibc.malloc.hugetlb=0")  # the user's choice stays
    assert host_malloc.missing_settings(off, hugepages_only=True, **LINUX_GLIBC) == {}
    assert host_malloc.untuned_hint(dict(env, GLIBC_TUNABLES="glibc.malloc.hugetlb=1")) is None


def test_cli_asks_the_tuned_malloc_for_every_program(monkeypatch):
    from flan_jax import cli
    asked = []
    monkeypatch.setattr(host_malloc, "reexec_with_tuned_malloc", lambda **kw: asked.append(kw))
    for name in ("filter_stderr", "quiet_python_logs"):  # no stderr filter process, no log changes
        monkeypatch.setattr(cli.noise, name, lambda: None)
    monkeypatch.setattr(cli, "_quiet_native_logs", lambda: None)
    for command in ("main", "catalog"):
        monkeypatch.setattr(sys, "argv", ["flan-jax", command, "--no-such-flag"])
        with pytest.raises(SystemExit):
            cli.main()
    assert asked == [{}, {}]  # the main job too: it runs one step at a time and trims between phases


@pytest.mark.parametrize("value", ["yes", "2", ""])
def test_bad_switch_value_is_named(value):
    with pytest.raises(FlanJaxError, match=f"FLAN_JAX_MALLOC_TUNING={value!r}: expected 0 or 1"):
        host_malloc.missing_settings({"JAX_PLATFORMS": "cpu", "FLAN_JAX_MALLOC_TUNING": value},
                                     **LINUX_GLIBC)


def _clean_env(**extra: str) -> dict[str, str]:
    # Without the suite's 8 fake devices (conftest's XLA_FLAGS), for which nothing is tuned.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MALLOC_", "FLAN_JAX_MALLOC")) and k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", **extra)
    return env


def test_cli_reports_bad_switch_before_doing_anything():
    proc = subprocess.run([sys.executable, "-m", "flan_jax.cli", "catalog"], capture_output=True,
                          text=True, env=_clean_env(FLAN_JAX_MALLOC_TUNING="maybe"), timeout=120)
    assert proc.returncode == 2
    assert "FLAN_JAX_MALLOC_TUNING='maybe': expected 0 or 1" in proc.stderr
    assert proc.stdout == ""


SHOW_ENV = textwrap.dedent("""
    import os, sys
    from flan_jax import host_malloc
    print("start", os.environ.get("FLAN_JAX_MALLOC_REEXECUTED"), flush=True)
    host_malloc.reexec_with_tuned_malloc()
    print(os.environ.get("MALLOC_ARENA_MAX"), os.environ.get("MALLOC_MMAP_THRESHOLD_"),
          os.environ.get("FLAN_JAX_MALLOC_REEXECUTED"), sys.argv[1:])
""")


@needs_glibc
def test_reexec_runs_the_same_command_with_the_settings():
    proc = subprocess.run([sys.executable, "-c", SHOW_ENV, "a", "--b=c"], capture_output=True,
                          text=True, env=_clean_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    # The first process stopped at the re-exec; the second ran from the top with the settings
    # and the same arguments, and did not re-execute again.
    assert proc.stdout.splitlines() == [
        "start None", "start 1", f"1 {8 * 2**30} 1 ['a', '--b=c']"]


@needs_glibc
def test_switch_off_means_no_reexec():
    proc = subprocess.run([sys.executable, "-c", SHOW_ENV], capture_output=True, text=True,
                          env=_clean_env(FLAN_JAX_MALLOC_TUNING="0"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["start None", "None None None []"]


# A jitted function with a 64 MiB temporary (the [16384, 1024] hidden), like a train step's
# activations: XLA mallocs it on every call. Counts the minor page faults of 8 calls after 2.
FAULTS = textwrap.dedent("""
    import resource
    import sys
    from flan_jax import host_malloc
    host_malloc.reexec_with_tuned_malloc(hugepages_only=sys.argv[1:] == ["huge"])
    import jax, jax.numpy as jnp
    x, w1, w2 = jnp.ones((16384, 64)), jnp.full((64, 1024), 0.01), jnp.ones((1024, 4))
    f = jax.jit(lambda x, w1, w2: jnp.sum(jnp.tanh(x @ w1) @ w2))
    for _ in range(2):
        f(x, w1, w2).block_until_ready()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        f(x, w1, w2).block_until_ready()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _thp_mode() -> str:
    try:
        text = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return "none"
    return text.split("[")[1].split("]")[0] if "[" in text else "none"


@needs_glibc
@pytest.mark.skipif(_thp_mode() not in ("madvise", "always"), reason="no transparent huge pages")
def test_huge_pages_cut_per_call_page_faults():
    counts = {}
    for mode in ("default", "huge"):
        proc = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                              env=_clean_env(FLAN_JAX_MALLOC_TUNING="0" if mode == "default" else "1"),
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        counts[mode] = int(proc.stdout.split()[-1])
    # Still mapped afresh on each call, but in 2 MiB pages (32 per 64 MiB, not 16384) where the
    # kernel's mode is madvise; with "always" the default run gets them too.
    if _thp_mode() == "madvise":
        assert counts["default"] >= 8 * 16384 * 0.9, counts
    assert counts["huge"] <= 8 * 16384 / 20, counts


@needs_glibc
def test_tuned_settings_remove_per_call_page_faults():
    counts = {}
    for switch in ("0", "1"):
        proc = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True,
                              env=_clean_env(FLAN_JAX_MALLOC_TUNING=switch), timeout=300)
        assert proc.returncode == 0, proc.stderr
        counts[switch] = int(proc.stdout.split()[-1])
    # glibc's defaults map the temporary afresh on each call (16384 pages of 4 KiB);
    # the tuned process reuses the freed block.
    assert counts["0"] >= 8 * 16384 * 0.9, counts
    assert counts["1"] <= counts["0"] / 20, counts


def test_untuned_hint_names_the_settings(monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    hint = host_malloc.untuned_hint({})
    assert hint is not None and "MALLOC_ARENA_MAX=1" in hint
    assert host_malloc.untuned_hint(dict(host_malloc.TUNED_MALLOC_ENV)) is None
    assert host_malloc.untuned_hint({"FLAN_JAX_MALLOC_TUNING": "0"}) is None
    assert host_malloc.untuned_hint({"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}) is None


# In a tuned process a freed 256 MiB block stays resident; release_free_memory hands it back.
RSS = textwrap.dedent("""
    from flan_jax import host_malloc
    host_malloc.reexec_with_tuned_malloc()
    import numpy as np

    def rss_mib():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) // 1024

    block = np.ones(64 * 2**20, np.float32)
    blocker = np.ones(1024, np.float32)  # allocated after, so the block is not at the heap's top
    del block
    kept = rss_mib()
    released = host_malloc.release_free_memory()
    print(kept, rss_mib(), released)
""")


@needs_glibc
def test_release_free_memory_returns_the_kept_heap():
    proc = subprocess.run([sys.executable, "-c", RSS], capture_output=True, text=True,
                          env=_clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    kept, after, released = proc.stdout.split()
    assert released == "True"
    assert int(kept) - int(after) >= 200, (kept, after)  # MiB
