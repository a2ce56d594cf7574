"""The embedding dimension comes from the model: a tiny sentence-transformers model of another size,
built here from scratch (random weights, MiniLM's tokenizer), works end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provenance import Index
from provenance.encoders import configured_dim, default_model_path
from provenance.samples import SOURCES


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    base = tmp_path_factory.mktemp("tiny")
    bert_dir = base / "bert"
    BertModel(BertConfig(vocab_size=30522, hidden_size=48, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=96)).save_pretrained(bert_dir)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(default_model_path() / name, bert_dir / name)
    word = models.Transformer(str(bert_dir), max_seq_length=128)
    model = SentenceTransformer(modules=[word, models.Pooling(48), models.Dense(48, 24), models.Normalize()],
                                device="cpu")
    out = base / "tiny-st"
    model.save(str(out))
    return out


def test_a_24_dimension_model_works_end_to_end(tiny_model: Path, tmp_path: Path) -> None:
    assert configured_dim(tiny_model) == 24
    text = next(iter(SOURCES.values()))
    with Index.open(tmp_path / "idx", create=True, model_path=tiny_model) as idx:
        embed = idx.signal("text-embed")
        assert embed.dim == 24 and embed.describe()["dim"] == 24
        assert idx.add([text])[0].status == "added"
        report = idx.check_text(text + "\nA closing line of my own.")
        m = report.matches[0]
        assert m.verdict in ("exact", "near-duplicate")
        assert m.evidence["text-embed"]["max_cosine"] > 0.99  # the same passages, embedded by the tiny model
    # The snapshot on disk records the model's dimension; reopening catches up without error.
    with Index.open(tmp_path / "idx", model_path=tiny_model) as idx:
        assert idx.vectors(idx.signal("text-embed")).dim == 24


def test_an_index_built_with_one_model_refuses_another(tiny_model: Path, tmp_path: Path) -> None:
    from provenance import ProvenanceIndexError

    with Index.open(tmp_path / "idx", create=True):
        pass
    with pytest.raises(ProvenanceIndexError, match="text-embed fingerprints were made by"):
        Index.open(tmp_path / "idx", model_path=tiny_model)
