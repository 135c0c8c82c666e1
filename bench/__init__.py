"""Benchmarks of the embedded stack (make bench)."""
