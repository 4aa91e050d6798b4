"""Benchmarks that measure a candidate and its baseline side by side in one run (medians)."""
