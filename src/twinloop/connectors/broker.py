"""MQTT brokers that twinloop starts itself: embedded amqtt (the zero-config default) and Debian's mosquitto.

Both run in their own process: amqtt in-process shares the GIL with the clients and halves throughput
(DEPENDENCY-NOTES §3), and a separate process can be killed and restarted on the same port, which is how
the reconnect tests simulate a broker outage.

Run the embedded broker by hand with ``python -m twinloop.connectors.broker --port 1883``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from twinloop.connectors.urls import ConnectorError, free_port, port_open

_log = logging.getLogger(__name__)
_PASSWORD_ENV = "TWINLOOP_BROKER_PASSWORD"


class _BrokerProcess:
    """A broker in a child process: start it, wait until it accepts connections, stop it."""

    kind = "broker"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.host = host
        self.port = port or free_port(host)
        self.username = username
        self.password = password
        self._proc: subprocess.Popen[bytes] | None = None
        # config, log and password file live as long as this object, so a restart reuses them
        self._tmp = tempfile.TemporaryDirectory(prefix=f"twinloop-{self.kind}-")
        self._dir = Path(self._tmp.name)
        self._log_path = self._dir / "broker.log"

    @property
    def url(self) -> str:
        """Where clients connect: ``mqtt://host:port``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self, timeout: float = 10.0) -> _BrokerProcess:
        """Start the broker and return once it accepts TCP connections; ``ConnectorError`` if it won't."""
        if self.running:
            return self
        if port_open(self.host, self.port):
            raise ConnectorError("port is already in use", url=self.url, hint="pick another port or port=0")
        cmd, env = self._command()
        log = open(self._log_path, "ab")  # noqa: SIM115 - the child owns it for its whole life
        try:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConnectorError(
                    f"{self.kind} exited with code {self._proc.returncode} while starting",
                    url=self.url,
                    hint=f"its log says: {self._log_tail()}",
                )
            if port_open(self.host, self.port):
                _log.info("%s listening on %s", self.kind, self.url)
                return self
            time.sleep(0.05)
        self.stop()
        raise ConnectorError(
            f"{self.kind} did not accept connections within {timeout:.0f} s",
            url=self.url,
            hint=f"its log says: {self._log_tail()}",
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); the port can be reused afterwards."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _log_tail(self, chars: int = 600) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-chars:].strip() or "(empty)"
        except OSError:
            return "(no log)"

    def __enter__(self) -> _BrokerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()


class EmbeddedBroker(_BrokerProcess):
    """amqtt (MQTT 3.1.1 only) in a child process; anonymous by default, or one username/password."""

    kind = "amqtt"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        cmd = [
            sys.executable,
            "-m",
            "twinloop.connectors.broker",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--parent-pid",  # it exits with us, even when we are killed
            str(os.getpid()),
        ]
        env: dict[str, str] = {}
        if self.username is not None and self.password is not None:
            cmd += ["--username", self.username]
            env[_PASSWORD_ENV] = self.password  # not on the command line, where `ps` would show it
        return cmd, env


class MosquittoBroker(_BrokerProcess):
    """Debian's ``mosquitto`` binary with a generated config; ``available()`` says whether it is installed."""

    kind = "mosquitto"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
        persistence: bool = False,
        data_dir: str | Path | None = None,
        binary: str | None = None,
    ) -> None:
        """``persistence`` keeps retained messages and persistent sessions across restarts, in ``data_dir``
        (default: a private temp dir that lives as long as this object)."""
        super().__init__(host, port, username=username, password=password)
        self.persistence = persistence
        self.data_dir = Path(data_dir) if data_dir else self._dir
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    @staticmethod
    def available() -> bool:
        """True when a ``mosquitto`` binary is installed (``apt-get install mosquitto``)."""
        return (shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")) is not None

    def _command(self) -> tuple[list[str], dict[str, str]]:
        if not Path(self.binary).exists():
            raise ConnectorError("mosquitto is not installed", url=self.url, hint="apt-get install mosquitto")
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if self.username else 'true'}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.data_dir}/",
            "log_dest stdout",
            "max_queued_messages 0",  # 0 = unlimited; a persistent session must not drop offline messages
            # run as whoever started us (mosquitto started as root otherwise drops to a user that cannot
            # read our private temp dir); ignored when not root
            f"user {getpass.getuser()}",
        ]
        if self.username is not None and self.password is not None:
            pwfile = self._dir / "passwd"
            passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            subprocess.run(
                [passwd, "-c", "-b", str(pwfile), self.username, self.password],
                check=True,
                capture_output=True,
            )
            lines.append(f"password_file {pwfile}")
        conf = self._dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return [self.binary, "-c", str(conf)], {}


def amqtt_config(host: str, port: int, password_file: str | None = None) -> dict[str, Any]:
    """The amqtt 0.12 config: one TCP listener, and either anonymous access or a password file.

    No $SYS or packet-logging plugins: they cost throughput and nobody reads them here.
    """
    auth: dict[str, Any]
    if password_file:
        auth = {"amqtt.plugins.authentication.FileAuthPlugin": {"password_file": password_file}}
    else:
        auth = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    return {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": auth}


#: How long a helper whose parent is gone may take to stop cleanly before it is ended outright.
ORPHAN_GRACE_S = 10.0


def watch_parent(parent: int, on_gone: Callable[[], object], *, grace_s: float = ORPHAN_GRACE_S,
                 every_s: float = 0.5) -> threading.Thread:
    """Watch, on a daemon thread of its own, for the process that started us (pid ``parent``) to go.

    Helpers a runtime starts (the embedded broker, the demo's simulator) run this, so a runtime
    killed with SIGKILL leaves no orphan behind: an orphaned broker would hold the port, devices
    would keep publishing to it, and the restarted runtime would listen elsewhere. Once we are
    reparented, ``on_gone()`` is called from the watching thread (so make it thread-safe, e.g.
    ``lambda: loop.call_soon_threadsafe(stop)``) to stop cleanly; if the process still runs
    ``grace_s`` later — its event loop stuck on a broker that has gone too — it is ended with
    ``os._exit``. The watch needs neither the event loop nor any connection to be alive.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        _log.warning("the process that started this one (pid %d) is gone; stopping", parent)
        try:
            on_gone()
        except Exception:  # noqa: BLE001 - we are exiting either way
            _log.exception("stopping cleanly failed")
        time.sleep(grace_s)
        _log.warning("still running %.0f s after the parent (pid %d) went; exiting now", grace_s, parent)
        os._exit(1)

    thread = threading.Thread(target=watch, name=f"watch-parent-{parent}", daemon=True)
    thread.start()
    return thread


async def _serve(host: str, port: int, username: str | None, password: str | None,
                 parent: int | None = None) -> None:
    from amqtt.broker import Broker

    password_file = None
    if username is not None:
        from pwdlib import PasswordHash
        from pwdlib.hashers.argon2 import Argon2Hasher

        fd, password_file = tempfile.mkstemp(prefix="twinloop-amqtt-", suffix=".passwd")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{username}:{PasswordHash((Argon2Hasher(),)).hash(password or '')}\n")
    broker = Broker(amqtt_config(host, port, password_file))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if parent is not None:
        watch_parent(parent, lambda: loop.call_soon_threadsafe(stop.set))
    await broker.start()
    try:
        await stop.wait()
    finally:
        try:
            await asyncio.wait_for(broker.shutdown(), 3)
        except Exception:  # noqa: BLE001 - exiting anyway; the parent only needs the port freed
            pass
        if password_file:
            os.unlink(password_file)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m twinloop.connectors.broker``."""
    parser = argparse.ArgumentParser(description="twinloop embedded MQTT broker (amqtt)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--username", help=f"require this user; the password comes from ${_PASSWORD_ENV}")
    parser.add_argument("--parent-pid", type=int, help="stop when this process (our parent) is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_serve(args.host, args.port, args.username, os.environ.get(_PASSWORD_ENV), args.parent_pid))


__all__ = ["ORPHAN_GRACE_S", "EmbeddedBroker", "MosquittoBroker", "amqtt_config", "main", "watch_parent"]

if __name__ == "__main__":
    main()
