"""The one error tree of twinloop; the API maps each branch to one HTTP status in one place.

::

    TwinloopError                      base of everything we raise on purpose
    ├── ValidationError                input is malformed (422)
    │   ├── DeclarationError           an asset-type / plant / DTDL file is wrong (names file + path)
    │   ├── UnitError                  unknown or incompatible unit
    │   └── ReadingError               a reading batch is malformed
    ├── NotFoundError                  a twin, type, key or relationship does not exist (404)
    ├── ConflictError                  already exists, or an optimistic revision check failed (409)
    │   └── RevisionConflict           expected revision differs from the stored one
    ├── AuthError                      no or bad credentials (401)
    │   └── PermissionDenied           credentials fine, role too low (403)
    ├── StoreError                     the store failed (503): retry or check the database
    └── ConfigError                    settings are wrong (exit code 2 in the CLI)

Every error carries a message a person can act on; ``hint`` says what to do about it.
"""

from __future__ import annotations


class TwinloopError(Exception):
    """Base of every error twinloop raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ValidationError(TwinloopError):
    """Input is malformed."""


class DeclarationError(ValidationError):
    """A declaration file (asset type YAML, plant file, DTDL) is wrong.

    ``file`` and ``path`` point at the offending spot, e.g. ``pump.yaml`` and ``channels[2].unit``.
    """

    def __init__(
        self, message: str, *, file: str | None = None, path: str = "", hint: str | None = None
    ) -> None:
        where = ":".join(p for p in (file or "", path) if p)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.file = file
        self.path = path
        self.reason = message


class UnitError(ValidationError):
    """A unit is unknown, or two units cannot be converted into each other."""


class ReadingError(ValidationError):
    """A reading batch is malformed (columns, lengths, types)."""


class NotFoundError(TwinloopError):
    """The thing asked for does not exist."""


class ConflictError(TwinloopError):
    """The thing exists already, or the request contradicts the stored state."""


class RevisionConflict(ConflictError):
    """An optimistic revision check failed: someone else changed the twin first."""

    def __init__(self, twin_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"twin {twin_id!r} is at revision {actual}, not {expected}",
            hint="re-read the twin and apply your change to the current revision",
        )
        self.twin_id = twin_id
        self.expected = expected
        self.actual = actual


class AuthError(TwinloopError):
    """No credentials, or credentials that are not valid."""


class PermissionDenied(AuthError):
    """Valid credentials whose role does not allow the operation."""


class StoreError(TwinloopError):
    """The store failed for a reason outside the caller's control."""


class ConfigError(TwinloopError):
    """Settings are missing or contradictory."""


__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DeclarationError",
    "NotFoundError",
    "PermissionDenied",
    "ReadingError",
    "RevisionConflict",
    "StoreError",
    "TwinloopError",
    "UnitError",
    "ValidationError",
]
