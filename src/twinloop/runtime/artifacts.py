"""Learned models kept in the store: save an object as the next version of (kind, key), load one back.

A payload is a short header naming its format, then the object pickled::

    TWINLOOP-ARTIFACT 1
    {"format": "pickle", "protocol": 5, "type": "…GuardedModel", "sha256": "…"}
    <the pickle>

Why pickle is acceptable here: the embedded store is a local file that only this twinloop process
writes, and whoever can write that file can already change every twin, key and audit record in
it, so unpickling what it holds trusts no one new. The header's digest catches a truncated or
damaged payload before anything is unpickled, and what cannot be rebuilt (a class renamed by a
newer twinloop) is a clear error, never a crash. A server deployment, where the store is shared and
artifacts may come from other hosts, should sign them: pass ``secret`` (the same on every worker),
and a payload without a valid HMAC-SHA256 is refused before it is unpickled; better still, keep
models in a data-only format (arrays and parameters) when one exists for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import platform
from collections.abc import Mapping
from typing import Any

import numpy as np

from twinloop import __version__
from twinloop.core.clock import Clock
from twinloop.core.errors import NotFoundError, StoreError, ValidationError
from twinloop.store.protocol import Artifact, Store

MAGIC = b"TWINLOOP-ARTIFACT 1\n"
FORMAT = "pickle"
PROTOCOL = 5


def _plain(value: Any) -> Any:
    """Metadata as JSON-ready values: numpy scalars and arrays (a guard's metrics) become Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _type_name(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


class ArtifactService:
    """Saves and loads learned models (detectors, thresholds, calibrations, prognosers) as versioned
    artifacts; see the module docstring for the payload format and why it is safe enough."""

    def __init__(self, store: Store, clock: Clock, secret: bytes | None = None) -> None:
        self._store = store
        self._clock = clock
        self._secret = secret

    # --- writing ---------------------------------------------------------------------------------
    def encode(self, obj: Any) -> bytes:
        """The payload for ``obj``: header line, then the pickle."""
        try:
            body = pickle.dumps(obj, protocol=PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise ValidationError(f"a {_type_name(obj)} cannot be kept as an artifact: {err}",
                                  hint="keep learned state in plain attributes (arrays, numbers)") from err
        header: dict[str, Any] = {"format": FORMAT, "protocol": PROTOCOL, "type": _type_name(obj),
                                  "sha256": hashlib.sha256(body).hexdigest()}
        if self._secret is not None:
            header["hmac"] = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body

    def save(self, kind: str, key: str, obj: Any, meta: Mapping[str, Any] | None = None) -> Artifact:
        """Store ``obj`` as the next version of ``(kind, key)``; ``meta`` should say what it learned
        from (twins, window start/end ns), with which metrics and model; the object's type, the
        code version and the Python version are added."""
        payload = self.encode(obj)
        full = {**_plain(dict(meta or {})), "object_type": _type_name(obj), "code_version": __version__,
                "python": platform.python_version(), "format": FORMAT}
        return self._store.put_artifact(kind, key, payload, full, self._clock.now_ns())

    # --- reading ---------------------------------------------------------------------------------
    def decode(self, artifact: Artifact, expect: type | tuple[type, ...] | None = None) -> Any:
        """The object in ``artifact``'s payload; `StoreError` if it is damaged, `ValidationError` if
        this code cannot rebuild it (another format, a newer pickle, a class that no longer exists,
        or not an ``expect``)."""
        what = f"artifact {artifact.kind}/{artifact.key} v{artifact.version}"
        payload = artifact.payload
        if not payload.startswith(MAGIC):
            raise StoreError(f"{what} is not a twinloop artifact (damaged, or written by something else)",
                             hint="save the model again (retrain it), or load an older version")
        head_end = payload.find(b"\n", len(MAGIC))
        try:
            header = json.loads(payload[len(MAGIC):head_end]) if head_end > 0 else None
        except ValueError:
            header = None
        if not isinstance(header, dict):
            raise StoreError(f"{what} has a damaged header",
                             hint="save the model again (retrain it), or load an older version")
        body = payload[head_end + 1:]
        if header.get("format") != FORMAT or int(header.get("protocol", 0)) > pickle.HIGHEST_PROTOCOL:
            raise ValidationError(
                f"{what} is in format {header.get('format')!r} (protocol {header.get('protocol')}), "
                f"which this twinloop cannot read", hint="open it with the twinloop version that wrote it")
        if hashlib.sha256(body).hexdigest() != header.get("sha256"):
            raise StoreError(f"{what} is damaged: its payload does not match its digest",
                             hint="save the model again (retrain it), or load an older version")
        if self._secret is not None:
            mac = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(mac, str(header.get("hmac", ""))):
                raise ValidationError(f"{what} is not signed with this deployment's artifact secret",
                                      hint="only load artifacts written by this deployment's workers")
        try:
            obj = pickle.loads(body)
        except Exception as err:  # noqa: BLE001 - anything unpickling raises means: cannot rebuild it
            raise ValidationError(
                f"{what} (a {header.get('type')}) cannot be rebuilt by this twinloop: {err}",
                hint=f"it was written by twinloop {artifact.meta.get('code_version', '?')}; "
                "retrain it, or load it with that version") from err
        if expect is not None and not isinstance(obj, expect):
            raise ValidationError(f"{what} holds a {_type_name(obj)}, not the model asked for",
                                  hint="check the artifact kind and key")
        return obj

    def load(
        self, kind: str, key: str, version: int | None = None,
        expect: type | tuple[type, ...] | None = None,
    ) -> tuple[Any, Artifact] | None:
        """The object of one version (``None``: the latest) with its artifact, or None if there is none."""
        artifact = self._store.artifact(kind, key, version)
        if artifact is None:
            return None
        return self.decode(artifact, expect), artifact

    def versions(self, kind: str | None = None, key: str | None = None) -> list[Artifact]:
        """Stored versions (metadata, no payload), ordered by kind, key, version."""
        return [a if not a.payload else Artifact(a.kind, a.key, a.version, a.created_ns, a.meta)
                for a in self._store.artifacts(kind, key)]

    def get(self, kind: str, key: str) -> list[Artifact]:
        """Every version of one ``(kind, key)``, oldest first; `NotFoundError` if it has none."""
        found = self.versions(kind, key)
        if not found:
            raise NotFoundError(f"no {kind} artifact for {key!r}",
                                hint="list what is kept with GET /models or `twinloop models list`")
        return found


__all__ = ["FORMAT", "MAGIC", "ArtifactService"]
