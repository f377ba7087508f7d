"""Subprocess body for the cache SIGKILL test: write three flan-mini tasks into a cache,
SIGKILL itself after `kill` records of the run have been written (0: never)."""
import os
import signal
import sys

TASKS = ["flan_mini.mini_add:zs_noopt", "flan_mini.mini_subtract:zs_noopt", "flan_mini.mini_double:zs_noopt"]
MAX_EXAMPLES = 40


def register():
    from flan_jax.data.features import vocab
    from flan_jax.data.tasks import catalogue

    vocabulary = vocab.load_vocabulary(vocab.default_vocabulary_path())  # whatever gin says
    catalogue.register_flan_mini_tasks(vocabulary, datasets=[t.split(".")[1].split(":")[0] for t in TASKS])


def write(cache_dir, kill=0, max_examples=MAX_EXAMPLES):
    from array_record.python import array_record_module as ar

    from flan_jax.data.cache import writer

    if kill:
        real = ar.ArrayRecordWriter
        written = [0]

        class Killing:
            def __init__(self, *args):
                self._writer = real(*args)

            def write(self, record):
                self._writer.write(record)
                written[0] += 1
                if written[0] == kill:
                    os.kill(os.getpid(), signal.SIGKILL)

            def close(self):
                self._writer.close()

        ar.ArrayRecordWriter = Killing
    register()
    return writer.cache_tasks(TASKS, str(cache_dir), max_examples=max_examples)


if __name__ == "__main__":
    write(sys.argv[1], int(sys.argv[2]))
