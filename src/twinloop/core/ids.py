"""Identifiers: readable, URL-safe ids for twins and types, and random ids for events.

Twin ids appear in topics, URLs and file names, so they are restricted to a safe alphabet:

>>> validate_id("pump-1.A_2")
'pump-1.A_2'
>>> validate_id("bad id")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
twinloop.core.errors.ValidationError: invalid id 'bad id': use 1-128 letters, ...
"""

from __future__ import annotations

import os
import re

from twinloop.core.errors import ValidationError

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")


def validate_id(value: str, *, what: str = "id") -> str:
    """Return ``value`` if it is a valid id, else raise a `ValidationError` saying what is allowed."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ValidationError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '-', '_', '.', ':' "
            "starting with a letter or digit"
        )
    return value


def new_id() -> str:
    """A random unique id (128 bits as 32 hex digits, like a uuid4's hex) for events, keys and audit
    records; ``os.urandom`` directly, because ingest mints thousands of event ids a second."""
    return os.urandom(16).hex()


__all__ = ["ID_PATTERN", "new_id", "validate_id"]
