"""Benchmarks and the soak, run on demand (not part of the test suite)."""
