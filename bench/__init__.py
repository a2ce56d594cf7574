"""Benchmarks and accuracy evaluation for provenance-checker (not part of the test run)."""
