"""Benchmark harnesses on public data sets (python -m twinloop.bench.<name>)."""
