"""FAISS snapshots: catching up from the catalog, growing from flat to HNSW, round trips."""

import numpy as np

from provenance.indexes import vectors
from provenance.indexes.catalog import Catalog, NewItem
from provenance.indexes.vectors import VectorIndex


def fill(catalog, n, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for i, v in enumerate(vecs):
        catalog.add_item(NewItem(sha256=f"{seed}-{i}", path=None, source=None, media="text", size=1,
                                 metadata={}, fingerprints=[("vec", 0, 1, v.tobytes(), None)]))
    return vecs


def test_float_index_grows_to_hnsw_and_agrees_with_exact_search(tmp_path, monkeypatch):
    monkeypatch.setattr(vectors, "HNSW_MIN_VECTORS", 300)
    catalog = Catalog(tmp_path / "c.sqlite", create=True)
    vecs = fill(catalog, 400)
    vi = VectorIndex(tmp_path / "faiss", "vec", 1, "m", "float", 32)
    vi.load(catalog)
    assert "HNSW" in vi.factory and len(vi) == 400
    queries = vecs[:40] + 0.05 * np.random.default_rng(1).standard_normal((40, 32)).astype(np.float32)
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :5] + 1  # catalog row ids start at 1
    _, got = vi.search(queries, 5)
    agreement = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(exact, got)])
    assert agreement >= 0.95
    vi.save()
    # A new process loads the HNSW snapshot and catches up on rows added since.
    more = fill(catalog, 10, seed=7)
    again = VectorIndex(tmp_path / "faiss", "vec", 1, "m", "float", 32)
    again.load(catalog)
    assert again.factory == vi.factory and len(again) == 410
    _, ids = again.search(more[:1], 1)
    assert ids[0][0] == 401


def test_flat_snapshot_round_trip_and_mismatch_is_rebuilt(tmp_path, capsys):
    catalog = Catalog(tmp_path / "c.sqlite", create=True)
    fill(catalog, 20)
    vi = VectorIndex(tmp_path / "faiss", "vec", 1, "m", "float", 32)
    vi.load(catalog)
    vi.save()
    assert VectorIndex.snapshot_last_row(tmp_path / "faiss", "vec") == 20
    assert VectorIndex.snapshot_last_row(tmp_path / "faiss", "vec", catalog.catalog_id) == 20
    assert VectorIndex.snapshot_last_row(tmp_path / "faiss", "vec", "another-catalog") is None
    # A snapshot made with another model is derived data of the wrong kind: rebuilt, with one line.
    other = VectorIndex(tmp_path / "faiss", "vec", 1, "another-model", "float", 32)
    other.load(catalog)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another-model" in err[0] and "rebuilt it from the catalog (20 vectors)" in err[0]
    assert len(other) == 20
