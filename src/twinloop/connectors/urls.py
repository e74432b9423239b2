"""Where a connection goes: connector URLs, free loopback ports, the error raised when a peer is unreachable.

Every connector names its peer by one URL (``mqtt://127.0.0.1:1883``, ``opc.tcp://host:4840/path``) so a
failure message can always say *which* connection failed.

>>> parse_url("mqtts://broker.example:8883").tls
True
>>> parse_url("mqtt://127.0.0.1").port
1883
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from twinloop.core.errors import TwinloopError

_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883, "opc.tcp": 4840}
_TLS_SCHEMES = {"mqtts", "ssl"}


class ConnectorError(TwinloopError):
    """A connection to a broker, server or device failed; the message names the URL."""

    def __init__(self, message: str, *, url: str, hint: str | None = None) -> None:
        super().__init__(f"{url}: {message}", hint=hint)
        self.url = url


@dataclass(frozen=True)
class Endpoint:
    """A parsed connector URL."""

    scheme: str
    host: str
    port: int
    path: str
    username: str | None
    password: str | None

    @property
    def tls(self) -> bool:
        """True when the scheme asks for an encrypted connection."""
        return self.scheme in _TLS_SCHEMES


def parse_url(url: str) -> Endpoint:
    """Split a connector URL, filling in the scheme's default port; raise ``ConnectorError`` if unusable."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConnectorError(
            f"unsupported scheme {parts.scheme!r}",
            url=url,
            hint=f"use one of {', '.join(sorted(_DEFAULT_PORTS))}",
        )
    if not parts.hostname:
        raise ConnectorError("no host in URL", url=url, hint="write it as scheme://host:port")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as err:
        raise ConnectorError(f"bad port: {err}", url=url) from err
    return Endpoint(scheme, parts.hostname, port, parts.path, parts.username, parts.password)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago; good enough for loopback tests and embedded services."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


__all__ = ["ConnectorError", "Endpoint", "free_port", "parse_url", "port_open"]
