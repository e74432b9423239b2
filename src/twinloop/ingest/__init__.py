"""Ingestion: mapping tables, decoding, unit conversion, validation, dedupe and ordering, quarantine."""
