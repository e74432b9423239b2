"""Ingestion: mapping tables, decoding, unit conversion, validation, dedupe and ordering, quarantine.

``Normalizer(mapping, registry, twin_types, clock, policy).normalize(raw_messages)`` is the one
verb; `load_mapping` reads a mapping file; `replay_quarantine` re-runs quarantined payloads.
"""

from twinloop.ingest.dedupe import IdempotencyKey
from twinloop.ingest.mapping import RECORDS_TOPIC, Mapping, load_mapping, parse_mapping
from twinloop.ingest.normalizer import NormalizePolicy, Normalizer, NormalizeResult
from twinloop.ingest.rejected import REASONS, Rejected
from twinloop.ingest.replay import ReplayReport, replay_quarantine

__all__ = [
    "REASONS",
    "RECORDS_TOPIC",
    "IdempotencyKey",
    "Mapping",
    "NormalizePolicy",
    "NormalizeResult",
    "Normalizer",
    "Rejected",
    "ReplayReport",
    "load_mapping",
    "parse_mapping",
    "replay_quarantine",
]
