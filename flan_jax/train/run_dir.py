"""The run directory (`model_dir`): what may be in it, and one training run at a time.

    model_dir/
      checkpoints/<step>/   orbax checkpoints (and orbax's `<step>.orbax-checkpoint-tmp-*`)
      tensorboard/          event files
      adapters/<step>/      a LoRA run's final adapters (train/lora_training.py)
      .lock                 the running trainer's pid and host (see `RunLock`)

Before a run touches `model_dir`, `check_model_dir` refuses (FlanJaxError, one line naming the
path) a `model_dir` that is a regular file, a directory it cannot write, a directory holding
anything else at its top level (a checkpoint copied to the top level, another run's files), and
a `checkpoints/` holding anything but step directories. Nothing is created, moved or deleted.

`RunLock` makes a second trainer on the same `model_dir` fail at once instead of racing the
first (two runs interleaving checkpoint writes and TensorBoard values). It holds an advisory
`fcntl.flock` on `model_dir/.lock`: the kernel drops it when the process dies, so a lock left by
a crashed or SIGKILLed run is stale by construction and is taken over (logged). On filesystems
without working flock (some NFS), the lock is only as good as the filesystem's.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import socket
import time

from flan_jax.errors import FlanJaxError

log = logging.getLogger("flan_jax.train")
LOCK_NAME = ".lock"
RUN_ENTRIES = ("checkpoints", "tensorboard", "adapters", LOCK_NAME)  # everything a run may create at the top
_STEP_DIR = re.compile(r"^\d+(\.orbax-checkpoint-tmp(-\d+)?)?$")  # `<step>` or orbax's tmp dir of it


class RunDirError(FlanJaxError):
    """`model_dir` cannot be used: the message names the path and what was found."""


def os_error_text(e: OSError) -> str:
    """'No space left on device' etc.: the strerror, without the path repeated."""
    return e.strerror or type(e).__name__


def check_model_dir(model_dir: str) -> None:
    """Raise RunDirError unless `model_dir` is absent, or a directory holding only run entries.

    Allowed top level: `checkpoints/`, `tensorboard/`, `.lock`. Allowed in `checkpoints/`:
    `<step>` directories and orbax's `<step>.orbax-checkpoint-tmp-<n>` directories.
    """
    if not os.path.exists(model_dir):
        return
    if not os.path.isdir(model_dir):
        raise RunDirError(f"model_dir {model_dir} exists and is not a directory")
    foreign = sorted(set(os.listdir(model_dir)) - set(RUN_ENTRIES))
    if foreign:
        what = ", ".join(foreign[:5]) + (f" (+{len(foreign) - 5} more)" if len(foreign) > 5 else "")
        raise RunDirError(f"model_dir {model_dir} holds files that are not a flan_jax run's ({what}); "
                          "a run writes only checkpoints/, tensorboard/ and .lock there: use a new or "
                          "empty directory")
    ckpt = os.path.join(model_dir, "checkpoints")
    if os.path.exists(ckpt):
        if not os.path.isdir(ckpt):
            raise RunDirError(f"{ckpt} exists and is not a directory")
        bad = sorted(n for n in os.listdir(ckpt)
                     if not (_STEP_DIR.match(n) and os.path.isdir(os.path.join(ckpt, n))))
        if bad:
            raise RunDirError(f"{ckpt} holds entries that are not checkpoint step directories "
                              f"({', '.join(bad[:5])}); move them away")


class RunLock:
    """Exclusive use of `model_dir` by this process (see module docstring); a context manager.

    Raises RunDirError when another live process holds it (naming its pid and host), or when
    `model_dir` cannot be created or written (naming the OS error: read-only, no space, ...).
    On release an empty `model_dir` this lock created is removed again.
    """

    def __init__(self, model_dir: str) -> None:
        self.model_dir = os.path.abspath(model_dir)
        self.path = os.path.join(self.model_dir, LOCK_NAME)
        self._fd: int | None = None
        self._created_dir = False

    def acquire(self) -> RunLock:
        try:
            self._created_dir = not os.path.isdir(self.model_dir)
            os.makedirs(self.model_dir, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = self._holder(fd)
                    os.close(fd)
                    raise RunDirError(f"model_dir {self.model_dir} is in use by another training run "
                                      f"({holder}; lock {self.path}); wait for it to end or use "
                                      "another model_dir") from None
                # the file may have been unlinked by a releasing run between open and flock
                if os.path.exists(self.path) and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
                os.close(fd)
            previous = self._holder(fd)
            if previous != "unknown process":
                log.info("model_dir %s: stale lock of %s (that process is gone); taken over",
                         self.model_dir, previous)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "started": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode())
            os.fsync(fd)
        except OSError as e:
            raise RunDirError(f"model_dir {self.model_dir} cannot be written: {os_error_text(e)} "
                              f"({e.filename or self.path})") from None
        self._fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0) or b"{}")
            return f"pid {info['pid']} on {info['host']} since {info['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "unknown process"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # unlink while locked, then unlock (see acquire's inode check)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        if self._created_dir:
            try:
                os.rmdir(self.model_dir)  # only if still empty: a run that wrote nothing
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    raise

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
