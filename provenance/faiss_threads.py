"""FAISS searches and training in one OpenMP thread.

FAISS parallelises a search over its queries with OpenMP, whose threads spin while they wait for one
another. On a machine whose cores are busy with other work (a shared CI runner, a laptop compiling) that
spinning is ruinous: measured on the 2-core development machine at load average ~5, 1,000 ORB descriptors
searched in a binary IVF index of 262k codes took 107-1,172 ms with two threads and 26-35 ms with one, a
flat search 1.8-2.3 s against 0.85-0.97 s, and training that IVF index 34 s against 1.9 s. A check's
searches are small, so one thread costs little on an idle machine and saves seconds on a busy one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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
