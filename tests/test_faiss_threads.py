"""FAISS work runs in one OpenMP thread and flat float searches through BLAS; the caller's settings are
restored afterwards (provenance.faiss_threads)."""

from __future__ import annotations

import faiss
import numpy as np

from provenance import localfeatures as lf
from provenance.faiss_threads import one_thread


def test_one_thread_inside_and_restored_after() -> None:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        with one_thread():
            assert faiss.omp_get_max_threads() == 1
        assert faiss.omp_get_max_threads() == 2
        try:
            with one_thread():
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert faiss.omp_get_max_threads() == 2  # restored on an exception too
    finally:
        faiss.omp_set_num_threads(before)


def test_descriptor_search_leaves_the_callers_threads() -> None:
    rng = np.random.default_rng(0)
    idx = lf.DescriptorIndex(ivf_from=2000)
    feats = []
    for i in range(10):
        d = rng.integers(0, 256, (256, 32), dtype=np.uint8)
        f = lf.Features(points=np.zeros((256, 2), np.float32), descriptors=d, width=64, height=64)
        feats.append(f)
        idx.add(i, f)
    assert idx.kind == "ivf"
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        assert idx.candidates(feats[3], k_images=1)[0][0] == 3
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)



def test_blas_search_is_restored_and_finds_the_same_neighbours() -> None:
    from provenance.faiss_threads import blas_from

    rng = np.random.default_rng(1)
    stored = rng.standard_normal((3000, 64)).astype(np.float32)
    queries = rng.standard_normal((12, 64)).astype(np.float32)
    index = faiss.IndexFlatIP(64)
    index.add(stored)
    before = faiss.cvar.distance_compute_blas_threshold
    one_by_one = index.search(queries, 5)
    with blas_from(4):
        assert faiss.cvar.distance_compute_blas_threshold == 4
        through_blas = index.search(queries, 5)
    assert faiss.cvar.distance_compute_blas_threshold == before
    assert (one_by_one[1] == through_blas[1]).all()
    np.testing.assert_allclose(one_by_one[0], through_blas[0], rtol=1e-5, atol=1e-5)
