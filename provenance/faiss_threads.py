"""FAISS searches and training in one OpenMP thread, and flat float searches through BLAS.

FAISS parallelises a search over its queries with OpenMP, whose threads spin while they wait for one
another. On a machine whose cores are busy with other work (a shared CI runner, a laptop compiling) that
spinning is ruinous: measured on the 2-core development machine at load average ~5, 1,000 ORB descriptors
searched in a binary IVF index of 262k codes took 107-1,172 ms with two threads and 26-35 ms with one, a
flat search 1.8-2.3 s against 0.85-0.97 s, and training that IVF index 34 s against 1.9 s. A check's
searches are small, so one thread costs little on an idle machine and saves seconds on a busy one.

FAISS 1.15 computes a flat float search with one dot product per (query, vector) pair unless there are
``distance_compute_blas_threshold`` queries (default 128,000), so each query streams every stored vector
through memory once. One matrix product (BLAS) streams them once for all queries: measured on 8,795 stored
384-d passages in one thread, 20 queries took 9.9 ms one by one and 2.1 ms through BLAS, 40 queries 19.6
against 3.0 ms, 1 query 0.5 against 1.3 ms (``BLAS_FROM_QUERIES``). The inner products are the same up to
float rounding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

#: Flat float searches with at least this many queries go through one BLAS matrix product (see above).
BLAS_FROM_QUERIES = 4


@contextmanager
def blas_from(queries: int = BLAS_FROM_QUERIES) -> Iterator[None]:
    """Run the flat float searches inside through BLAS from ``queries`` queries on; the caller's setting is
    restored afterwards."""
    import faiss

    before = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = queries
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = before


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the FAISS calls inside in one OpenMP thread; the caller's setting is restored afterwards."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
