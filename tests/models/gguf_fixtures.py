"""Tiny GGUF files for the tests, written with gguf.GGUFWriter (llama.cpp's own writer).

* `write_tokenizer_metadata`: a small sentencepiece BPE vocabulary (trained here on a few lines)
  stored the way llama.cpp's converter stores Gemma 3's: <pad> <eos> <bos> <unk> first, <unk>
  typed CONTROL, whitespace-run pieces user-defined and spelled with real spaces, byte pieces,
  scores of -1000 for control / user-defined pieces, no space prefix.
* `write_gemma3` / `write_llama`: tiny checkpoints with F32 norms and Q8_0, Q5_0, Q4_0 and F16
  matrices (gguf.quants.quantize), so dequantization is exercised.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

CONTROL_EXTRA = ["<start_of_turn>", "<end_of_turn>"]
SPACE_RUNS = ["  ", "   ", "    "]
NEWLINE_RUNS = ["\n", "\n\n", "\n\n\n"]
TRAIN_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "Translate to German: the weather is nice today.",
    "Question: what is 12 plus 30? Answer: 42",
    "Résumé of the café: naïve crème brûlée, déjà vu.",
    "Options:\n- yes\n- no\n\nAnswer: yes",
    "def add(a, b):\n    return a + b\n",
    "In 1999 there were 365 days; in 2000 there were 366.",
]


def tokenizer_pieces(vocab_size: int = 420) -> tuple[list[str], list[float], list[int]]:
    """(tokens, scores, token_types) in GGUF form (Gemma 3 conventions, see module docstring)."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAIN_TEXT * 4), model_writer=buffer, vocab_size=vocab_size,
        model_type="bpe", pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="</s>", bos_piece="<s>", unk_piece="<unk>",
        control_symbols=CONTROL_EXTRA,
        user_defined_symbols=["\u2581" * len(s) for s in SPACE_RUNS] + NEWLINE_RUNS,
        byte_fallback=True, split_digits=True, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
        allow_whitespace_only_pieces=True, split_by_whitespace=False,
        num_threads=1, minloglevel=2, hard_vocab_limit=False,
    )
    model = pb.ModelProto.FromString(buffer.getvalue())
    tokens, scores, types = [], [], []
    for piece in model.pieces:
        token, kind, score = piece.piece, piece.type, piece.score
        if kind == 2:  # <unk>: llama.cpp writes Gemma's as CONTROL
            kind = 3
        if kind == 4 and set(token) == {"\u2581"}:
            token = " " * len(token)  # whitespace runs: real spaces, as in the Gemma 3 GGUF
        if kind in (3, 4):
            score = -1000.0
        tokens.append({"</s>": "<eos>", "<s>": "<bos>"}.get(token, token))
        scores.append(score)
        types.append(kind)
    return tokens, scores, types


def write_tokenizer_metadata(writer, vocab_size: int = 420, model: str = "llama") -> int:
    """Adds tokenizer.ggml.* to a GGUFWriter; returns the number of tokens."""
    tokens, scores, types = tokenizer_pieces(vocab_size)
    writer.add_tokenizer_model(model)
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)
    return len(tokens)


def _add(writer, name: str, value: np.ndarray, qtype_name: str) -> None:
    import gguf

    qtype = gguf.GGMLQuantizationType[qtype_name]
    value = value.astype(np.float32)
    if qtype_name == "F32":
        writer.add_tensor(name, value)
    else:
        writer.add_tensor(name, gguf.quants.quantize(value, qtype), raw_dtype=qtype)


def _finish(writer) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_gemma3(path: Path, *, layers: int = 2, hidden: int = 64, heads: int = 2, kv_heads: int = 1,
                 head_dim: int = 32, mlp: int = 128, tie: bool = True, seed: int = 0,
                 drop: tuple[str, ...] = (), extra_tensor: bool = False, skip_keys: tuple[str, ...] = ()) -> Path:
    """A tiny gemma3 GGUF with random weights (norms stored as llama.cpp does: 1 + w)."""
    import gguf

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "gemma3")
    keys = {
        "context_length": ("uint32", 512), "embedding_length": ("uint32", hidden),
        "block_count": ("uint32", layers), "feed_forward_length": ("uint32", mlp),
        "attention.head_count": ("uint32", heads), "attention.head_count_kv": ("uint32", kv_heads),
        "attention.key_length": ("uint32", head_dim), "attention.value_length": ("uint32", head_dim),
        "attention.layer_norm_rms_epsilon": ("float32", 1e-6), "rope.freq_base": ("float32", 1e6),
        "attention.sliding_window": ("uint32", 16),
    }
    for key, (kind, value) in keys.items():
        if key not in skip_keys:
            getattr(writer, f"add_{kind}")(f"gemma3.{key}", value)
    vocab = write_tokenizer_metadata(writer)
    mats = {  # numpy shapes [out, in] and the ggml type each is stored in
        "attn_q": ((heads * head_dim, hidden), "Q8_0"), "attn_k": ((kv_heads * head_dim, hidden), "Q5_0"),
        "attn_v": ((kv_heads * head_dim, hidden), "Q8_0"), "attn_output": ((hidden, heads * head_dim), "Q4_0"),
        "ffn_gate": ((mlp, hidden), "Q5_0"), "ffn_up": ((mlp, hidden), "F16"), "ffn_down": ((hidden, mlp), "Q8_0"),
    }
    norms = {"attn_norm": hidden, "attn_q_norm": head_dim, "attn_k_norm": head_dim, "post_attention_norm": hidden,
             "ffn_norm": hidden, "post_ffw_norm": hidden}
    tensors = {"token_embd.weight": (rng.normal(0, 0.5, (vocab, hidden)), "Q8_0"),
               "output_norm.weight": (1 + rng.normal(0, 0.2, hidden), "F32")}
    if not tie:
        tensors["output.weight"] = (rng.normal(0, 0.5, (vocab, hidden)), "Q8_0")
    for i in range(layers):
        for name, (shape, qtype) in mats.items():
            tensors[f"blk.{i}.{name}.weight"] = (rng.normal(0, 0.3, shape), qtype)
        for name, size in norms.items():
            tensors[f"blk.{i}.{name}.weight"] = (1 + rng.normal(0, 0.2, size), "F32")
    if extra_tensor:
        tensors["blk.0.mystery.weight"] = (np.ones(hidden), "F32")
    for name, (value, qtype) in tensors.items():
        if name not in drop:
            _add(writer, name, value, qtype)
    _finish(writer)
    return Path(path)


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute (HF q/k rows -> GGUF rows)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_from_hf(path: Path, state: dict[str, np.ndarray], config: dict, qtype: str = "F32") -> Path:
    """A llama GGUF written from HF tensors the way convert_hf_to_gguf.py does (q/k permuted)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("llama.context_length", 256)
    writer.add_uint32("llama.embedding_length", config["hidden_size"])
    writer.add_uint32("llama.block_count", config["num_hidden_layers"])
    writer.add_uint32("llama.feed_forward_length", config["intermediate_size"])
    writer.add_uint32("llama.attention.head_count", config["num_attention_heads"])
    writer.add_uint32("llama.attention.head_count_kv", config["num_key_value_heads"])
    writer.add_uint32("llama.rope.dimension_count", config["head_dim"])
    writer.add_float32("llama.rope.freq_base", config["rope_theta"])
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", config["rms_norm_eps"])
    writer.add_uint32("llama.vocab_size", config["vocab_size"])
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    for hf, value in state.items():
        if hf == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif hf == "model.norm.weight":
            name = "output_norm.weight"
        elif hf == "lm_head.weight":
            name = "output.weight"
        else:
            i, rest = hf.removeprefix("model.layers.").split(".", 1)
            name = f"blk.{i}.{names[rest.removesuffix('.weight')]}.weight"
        if name.endswith("attn_q.weight"):
            value = llama_cpp_permute(value, config["num_attention_heads"])
        elif name.endswith("attn_k.weight"):
            value = llama_cpp_permute(value, config["num_key_value_heads"])
        _add(writer, name, value, "F32" if value.ndim == 1 else qtype)
    _finish(writer)
    return Path(path)
