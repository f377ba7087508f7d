"""train_data.FirstBatch: the batch iterator built and its first batch read in a thread."""
import threading

import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.train.train_data import FirstBatch


class Batches:
    def __init__(self, items):
        self.items, self.closed, self.threads = iter(items), False, []

    def __iter__(self):
        return self

    def __next__(self):
        self.threads.append(threading.current_thread().name)
        return next(self.items)

    def close(self):
        self.closed = True


def test_result_is_the_iterator_and_its_first_batch_read_in_another_thread():
    made = Batches([{"x": 1}, {"x": 2}])
    batches, first = FirstBatch(lambda: made, "empty").result()
    assert first == {"x": 1} and next(batches) == {"x": 2}
    assert made.threads[0].startswith("first-batch") and made.threads[1] == threading.current_thread().name


def test_read_in_the_calling_thread_when_not_in_the_background():
    made = Batches([{"x": 1}])
    reader = FirstBatch(lambda: made, "empty", background=False)
    assert made.threads == [threading.current_thread().name]  # read before __init__ returned
    assert reader.result()[1] == {"x": 1}

    def bad():
        raise FlanJaxError("tasks.csv line 3: no field 'label'")

    with pytest.raises(FlanJaxError, match="tasks.csv line 3"):
        FirstBatch(bad, "empty", background=False).result()


def test_empty_iterator_is_one_clear_error_and_is_closed():
    made = Batches([])
    with pytest.raises(FlanJaxError, match=r"^train: mixture 'm' yields no batch of 8 rows$"):
        FirstBatch(lambda: made, "train: mixture 'm' yields no batch of 8 rows").result()
    assert made.closed


def test_errors_of_building_or_reading_are_raised_by_result():
    def bad():
        raise FlanJaxError("tasks.csv line 3: no field 'label'")

    with pytest.raises(FlanJaxError, match="tasks.csv line 3"):
        FirstBatch(bad, "empty").result()


def test_close_without_result_closes_the_iterator():
    made = Batches([{"x": 1}])
    reader = FirstBatch(lambda: made, "empty")
    reader.close()
    assert made.closed
    reader.close()  # twice: nothing more


@pytest.mark.parametrize("format_name", ["decoder", "prefix_lm", "enc_dec"])
def test_pipeline_batches_fit_the_spec_the_step_is_compiled_for(format_name):
    """train() compiles its step ahead for the format's example batch (synthetic_batch); the data
    pipeline's batches must have exactly those fields, shapes and dtypes, or every run would
    compile twice (the fallback)."""
    import jax

    from flan_jax.data.features import pipeline
    from flan_jax.train.mesh import make_mesh
    from flan_jax.train.step import fits_spec, global_batch_spec
    from flan_jax.train.synthetic import synthetic_batch

    lengths = {"inputs": 12, "targets": 6}
    examples = [{"inputs": [5 + i, 6, 7], "targets": [8, 9 + i, 1]} for i in range(40)]
    first = next(pipeline.batches(examples, format_name, lengths, 4, eos_id=1))
    mesh = make_mesh((1, 1, 1), devices=jax.devices()[:1])
    assert fits_spec(first, global_batch_spec(synthetic_batch(format_name, lengths, 1, 100, 0), 4, mesh))
    assert not fits_spec({**first, "extra": first[next(iter(first))]},
                         global_batch_spec(synthetic_batch(format_name, lengths, 1, 100, 0), 4, mesh))
