"""A tiny flan_jax checkpoint (random weights), its sentencepiece vocabulary (48 pieces) and a
local lm-eval task over four-row JSONL, for the lm-eval and generate tests (nothing downloads)."""
import io
import json

import flax.linen as nn
import jax
import numpy as np
import sentencepiece as spm

from flan_jax.models import params_io
from flan_jax.models.decoder import Decoder, DecoderConfig, dummy_batch

TEXT = ["the cat sat on the mat", "is ice cold yes no", "a dog ran far away", "one two three four five"] * 20
CONFIG = DecoderConfig(vocab_size=48, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32, num_layers=1)
ROWS = [{"q": "is ice cold", "choices": ["yes", "no"], "label": 0},
        {"q": "the cat sat", "choices": ["on the mat", "far away", "dog"], "label": 1},
        {"q": "one two", "choices": ["three", "four five"], "label": 0},
        {"q": "a dog", "choices": ["ran far away", "sat"], "label": 1}]
TASK_YAML = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def write_vocabulary(path):
    """A sentencepiece BPE model with flan_jax's ids (pad 0, eos 1, unk 2, no BOS)."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXT), model_writer=model, vocab_size=48,
                                   model_type="bpe", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   character_coverage=1.0, num_threads=1, minloglevel=2)
    path.write_bytes(model.getvalue())
    return path


def tiny_params(seed=0):
    params = nn.meta.unbox(Decoder(CONFIG).init(jax.random.PRNGKey(seed), dummy_batch())["params"])
    return jax.tree.map(lambda x: 3 * np.asarray(x) if x.ndim == 2 else np.asarray(x), params)  # peakier


def write_setup(root):
    """{"ckpt", "vocab", "tasks", "data"} under `root`: a params dir, the .model, a task folder."""
    params_io.save_checkpoint(root / "ckpt", CONFIG, tiny_params())
    write_vocabulary(root / "v.model")
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (root / "tasks").mkdir()
    (root / "tasks" / "tiny_mc.yaml").write_text(TASK_YAML.format(data=root / "data.jsonl"))
    return {"ckpt": root / "ckpt", "vocab": root / "v.model", "tasks": root / "tasks", "data": root / "data.jsonl"}


def reference_log_likelihood(params, context_ids, continuation_ids):
    """log p(continuation | BOS, context) from one plain forward pass, log-softmax in float64."""
    seq = list(context_ids) + list(continuation_ids)
    batch = {"decoder_input_tokens": np.asarray([[0] + seq[:-1]], np.int32)}
    logits = np.asarray(Decoder(CONFIG).apply({"params": params}, batch)[0], np.float64)
    top = logits.max(-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    start = len(context_ids)
    picks = [logp[start + i, t] for i, t in enumerate(continuation_ids)]
    greedy = all(int(np.argmax(logits[start + i])) == t for i, t in enumerate(continuation_ids))
    return float(sum(picks)), greedy


def reference_greedy(params, prompt_ids, steps, eos=1):
    """Greedy continuation by recomputing the whole forward each step (no cache)."""
    seq, out = [0] + list(prompt_ids), []
    for _ in range(steps):
        logits = np.asarray(Decoder(CONFIG).apply({"params": params}, {"decoder_input_tokens": np.asarray([seq])})[0])
        token = int(np.argmax(logits[-1]))
        if token in (eos, 0):
            break
        out.append(token)
        seq.append(token)
    return out


def harness_split(vocabulary, context, continuation):
    """lm-eval's own (context ids, continuation ids) for a causal model: its
    `TemplateLM._encode_pair` over `vocabulary.encode` (the reference for the token split)."""
    from lm_eval.api.model import TemplateLM

    class Tokenizer(TemplateLM):
        eot_token_id = 1

        def tok_encode(self, string, add_special_tokens=None, **kwargs):
            return list(vocabulary.encode(string))

        def _loglikelihood_tokens(self, requests, **kwargs):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def generate_until(self, requests, disable_tqdm=False):
            raise NotImplementedError

    return Tokenizer()._encode_pair(context, continuation)
