"""Access control: API keys (stored hashed) with four roles, and what each role may do.

Roles are ordered; each may do everything the roles below it may::

    viewer    read twins, graph, state, history, events, types
    operator  + set desired properties, invoke commands, post readings (HTTP ingest)
    engineer  + create, change and delete twins and relationships; replay/discard quarantine
    admin     + manage API keys, read the audit trail

A token looks like ``tlk_<key_id>_<secret>``; only a SHA-256 of the high-entropy secret is
stored, compared in constant time. There is no default password: the first start of a new
store creates one admin key and shows its token once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from twinloop.core.clock import Clock
from twinloop.core.errors import AuthError, NotFoundError, PermissionDenied, ValidationError
from twinloop.store.protocol import ROLES, ApiKeyRecord, AuditRecord, Role, Store

TOKEN_PREFIX = "tlk"

#: The lowest role allowed to perform each action.
PERMISSIONS: dict[str, Role] = {
    "read": "viewer",
    "readings:write": "operator",
    "twins:desired": "operator",
    "twins:command": "operator",
    "alerts:manage": "operator",
    "twins:write": "engineer",
    "quarantine:manage": "engineer",
    "keys:manage": "admin",
    "audit:read": "admin",
}


def role_allows(role: Role, action: str) -> bool:
    """True if ``role`` may perform ``action``."""
    needed = PERMISSIONS[action]
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name, and its role."""

    key_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How this caller appears in the audit trail."""
        return f"key:{self.key_id}({self.name})"

    def require(self, action: str) -> None:
        """Raise `PermissionDenied` unless this principal may perform ``action``."""
        if not role_allows(self.role, action):
            raise PermissionDenied(
                f"role {self.role!r} may not {action!r}",
                hint=f"this needs the {PERMISSIONS[action]!r} role or higher",
            )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyService:
    """Creates, checks and revokes API keys; every change is audited."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(self, name: str, role: str, *, actor: str = "system") -> tuple[ApiKeyRecord, str]:
        """A new key and its token; the token is returned once and never stored."""
        if role not in ROLES:
            raise ValidationError(f"unknown role {role!r}", hint=f"use one of {', '.join(ROLES)}")
        if not name or len(name) > 100:
            raise ValidationError("a key needs a name of 1-100 characters")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            key_id=key_id, name=name, role=role, secret_hash=_hash(secret),  # type: ignore[arg-type]
            created_ns=self._clock.now_ns(),
        )
        self._store.put_key(record)
        self._audit(actor, "key.create", key_id, {"name": name, "role": role})
        return record, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def authenticate(self, token: str | None) -> Principal:
        """The principal a token belongs to, or `AuthError` (never says which part was wrong)."""
        if not token:
            raise AuthError("missing API key", hint="send it as 'Authorization: Bearer <key>'")
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise AuthError("invalid API key")
        try:
            record = self._store.get_key(parts[1])
        except NotFoundError as err:
            raise AuthError("invalid API key") from err
        if record.revoked or not hmac.compare_digest(record.secret_hash, _hash(parts[2])):
            raise AuthError("invalid API key")
        return Principal(record.key_id, record.name, record.role)

    def revoke(self, key_id: str, *, actor: str = "system") -> ApiKeyRecord:
        record = self._store.get_key(key_id)
        revoked = ApiKeyRecord(**{**record.__dict__, "revoked": True})
        self._store.put_key(revoked)
        self._audit(actor, "key.revoke", key_id, {})
        return revoked

    def list(self) -> list[ApiKeyRecord]:
        return self._store.list_keys()

    def bootstrap(self) -> str | None:
        """On a store no one has used yet, create the first admin key and return its token."""
        if self._store.get_meta("bootstrapped"):
            return None
        _, token = self.create("bootstrap-admin", "admin", actor="system:bootstrap")
        self._store.set_meta("bootstrapped", str(self._clock.now_ns()))
        return token

    def _audit(self, actor: str, action: str, target: str, detail: dict) -> None:
        self._store.append_audit(
            AuditRecord(ts_ns=self._clock.now_ns(), actor=actor, action=action, target=target,
                        detail=detail)
        )


__all__ = ["PERMISSIONS", "TOKEN_PREFIX", "KeyService", "Principal", "role_allows"]
