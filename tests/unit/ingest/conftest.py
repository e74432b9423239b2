"""Fixtures of the ingest tests: a checked registry, a frozen clock, a normalizer factory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from twinloop.core.clock import ManualClock
from twinloop.ingest.normalizer import NormalizePolicy, Normalizer
from twinloop.twins.registry import TypeRegistry

sys.path.insert(0, str(Path(__file__).parent))
from ingest_fixtures import T0, TWINS, TYPES, make_mapping  # noqa: E402


@pytest.fixture
def registry() -> TypeRegistry:
    reg = TypeRegistry(TYPES)
    reg.check()
    return reg


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def make(registry: TypeRegistry, clock: ManualClock):  # type: ignore[no-untyped-def]
    def make_(policy: NormalizePolicy | None = None, rules: list[dict[str, Any]] | None = None,
              twins: dict[str, str] | None = None) -> Normalizer:
        return Normalizer(make_mapping(rules), registry, dict(TWINS if twins is None else twins), clock,
                          policy)

    return make_
