"""Persistence behind one `Store` protocol: DuckDB (embedded default) and memory (tests)."""
