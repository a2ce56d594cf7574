"""Storage: the SQLite catalog (source of truth) and the FAISS indexes derived from it."""

from .catalog import Catalog, ItemRow
from .vectors import VectorIndex

__all__ = ["Catalog", "ItemRow", "VectorIndex"]
