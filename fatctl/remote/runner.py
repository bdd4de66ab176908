"""The one place that opens SSH: paramiko transports with pinned host keys, reused per command.

The host key is checked right after key exchange and before any authentication: a box that
presents any key other than the pinned one is refused with `HostKeyMismatch`, nothing is sent
to it, and nothing is ever written to a known_hosts file (no trust on first use). paramiko and
socket errors become one-line `RemoteError`s naming the agent and host. Every command run is
recorded for `-v` and `--log-file` (fatctl.calllog: assignments and secrets masked, stdin never).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paramiko

from fatctl.calllog import ssh_command
from fatctl.errors import FatctlError, HostKeyMismatch, RemoteError
from fatctl.remote.runner_io import collect
from fatctl.remote.target import PublicKey, Target, parse_public_key
from fatctl.sensitive import Sensitive, redact

if TYPE_CHECKING:
    from collections.abc import Iterator

# paramiko logs handshake failures at ERROR; without a handler Python would print them to
# stderr. fatctl reports the same failure as one line, so keep paramiko's logger quiet.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

OutputFn = Callable[[str, str], None]  # (stream "out"|"err", one line without newline)

# Host key algorithm names that a pinned key type can be presented under.
_ALGS_FOR_TYPE = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


@dataclass(frozen=True)
class Result:
    """One command on one host: exit code and output, or the error that prevented it."""

    name: str
    host: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0

    def check(self, what: str, secrets: Sequence[Sensitive] = ()) -> Result:
        """This result if the command exited 0; otherwise RemoteError with stderr's last line.

        `secrets` are redacted from that line (a command fed a secret on stdin may echo it).
        """
        if self.ok:
            return self
        last = redact(self.stderr.strip(), secrets).splitlines()[-1:]
        why = self.error or (last[0][:200] if last else f"exit {self.exit_code}")
        raise RemoteError(f"{self.name} ({self.host}): {what} failed: {why}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.name,
            "host": self.host,
            "exit": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "stdout": self.stdout,
            "stderr": self.stderr,
            "error": self.error,
        }


def _pinned(target: Target) -> list[PublicKey]:
    if not target.host_keys:
        raise HostKeyMismatch(f"no pinned host key for {target.label()}: refusing to connect")
    try:
        return [parse_public_key(line) for line in target.host_keys]
    except ValueError as exc:
        raise RemoteError(f"pinned host key for {target.label()} is unusable: {exc}") from None


def _verify_host_key(
    transport: paramiko.Transport, target: Target, pinned: list[PublicKey]
) -> None:
    """Compare the presented key with the pinned ones; refuse on any difference."""
    presented = transport.get_remote_server_key()
    got = PublicKey(presented.get_name(), presented.asbytes())
    if any(p.key_type == got.key_type and p.blob == got.blob for p in pinned):
        return
    expected = ", ".join(p.fingerprint for p in pinned)
    raise HostKeyMismatch(
        f"host key mismatch for {target.name} ({target.host}): "
        f"expected {expected}, got {got.fingerprint}"
    )


def _preferred_algorithms(pinned: list[PublicKey], current: tuple[str, ...]) -> tuple[str, ...]:
    """Ask for the pinned key types first, so the server presents the key we can check."""
    first: list[str] = []
    for p in pinned:
        first += _ALGS_FOR_TYPE.get(p.key_type, (p.key_type,))
    rest = [a for a in current if a not in first]
    return tuple(dict.fromkeys(first + rest))


def _auth_keys(target: Target) -> list[paramiko.PKey]:
    keys: list[paramiko.PKey] = []
    if target.key_file:
        try:
            keys.append(paramiko.PKey.from_path(target.key_file))
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise RemoteError(f"cannot load key file {target.key_file}: {exc}") from None
    if target.use_agent or not target.key_file:
        keys.extend(paramiko.Agent().get_keys())
    if not keys:
        raise RemoteError(f"no SSH key for {target.label()}: set a key file or load ssh-agent")
    return keys


def _authenticate(transport: paramiko.Transport, target: Target) -> None:
    for key in _auth_keys(target):
        try:
            transport.auth_publickey(target.user, key)
        except paramiko.AuthenticationException:
            continue
        if transport.is_authenticated():
            return
    raise RemoteError(f"authentication failed for {target.user}@{target.label()}")


class Connection:
    """An authenticated transport to one target; channels on it run commands concurrently."""

    def __init__(self, target: Target, transport: paramiko.Transport) -> None:
        self.target = target
        self.transport = transport

    def alive(self) -> bool:
        return self.transport.is_active()

    def close(self) -> None:
        self.transport.close()

    def open_session(self) -> paramiko.Channel:
        try:
            return self.transport.open_session(timeout=self.target.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise _remote_error(self.target, exc) from None

    def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_output: OutputFn | None = None,
        raw: bool = False,
    ) -> Result:
        """Run `command`, feed `stdin` and close it; a non-zero exit is a result, not an error."""

        start = time.monotonic()
        chan = self.open_session()
        where = f"{self.target.user}@{self.target.label()}"
        try:
            with ssh_command(where, command, stdin) as call:
                chan.exec_command(command)
                if stdin is not None:
                    chan.sendall(stdin)
                chan.shutdown_write()
                out, err, code = collect(chan, timeout, on_output, self.target.label(), raw)
                call.outcome = f"exit {code}"
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise _remote_error(self.target, exc) from None
        finally:
            chan.close()
        return Result(self.target.name, self.target.host, code, out, err, time.monotonic() - start)


def _remote_error(target: Target, exc: BaseException, waited: float = 0.0) -> RemoteError:
    """One line for people: what failed and where, without a traceback."""
    where = f"{target.label()} port {target.port}"
    # paramiko reports a handshake that ran out of time in several ways; the clock is reliable.
    if isinstance(exc, socket.timeout | TimeoutError) or waited >= target.connect_timeout * 0.9:
        return RemoteError(f"{where}: timed out after {target.connect_timeout:g}s")
    if isinstance(exc, ConnectionRefusedError):
        return RemoteError(f"{where}: connection refused")
    if isinstance(exc, paramiko.SSHException | EOFError):
        text = str(exc) or type(exc).__name__
        if "banner" in text.lower():
            return RemoteError(f"{where}: no SSH banner within {target.connect_timeout:g}s")
        return RemoteError(f"{where}: ssh error: {text.splitlines()[0]}")
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return RemoteError(f"{where}: {text}")


def _open_socket(target: Target, via: Connection | None) -> Any:
    if via is None:
        return socket.create_connection((target.host, target.port), timeout=target.connect_timeout)
    return via.transport.open_channel(
        "direct-tcpip",
        (target.host, target.port),
        ("127.0.0.1", 0),
        timeout=target.connect_timeout,
    )


def connect(target: Target, via: Connection | None = None) -> Connection:
    """Open, verify the pinned host key, then authenticate; anything else is refused."""
    pinned = _pinned(target)
    transport: paramiko.Transport | None = None
    start = time.monotonic()
    try:
        sock = _open_socket(target, via)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = transport.handshake_timeout = target.connect_timeout
        transport.auth_timeout = target.connect_timeout
        options = transport.get_security_options()
        options.key_types = _preferred_algorithms(pinned, tuple(options.key_types))
        transport.start_client(timeout=target.connect_timeout)
        _verify_host_key(transport, target, pinned)
        _authenticate(transport, target)
        transport.set_keepalive(target.keepalive_s)
        return Connection(target, transport)
    except FatctlError:
        if transport is not None:
            transport.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        if transport is not None:
            transport.close()
        raise _remote_error(target, exc, time.monotonic() - start) from None


class Pool:
    """Connections reused within one fatctl command, keyed by target; closed together at the end."""

    def __init__(self) -> None:
        self._conns: dict[tuple[object, ...], Connection] = {}
        self._locks: dict[tuple[object, ...], threading.Lock] = {}
        self._guard = threading.Lock()
        self._closed = False

    def get(self, target: Target) -> Connection:
        with self._guard:
            lock = self._locks.setdefault(target.key, threading.Lock())
        with lock:  # one connect per target even when threads race for it
            conn = self._conns.get(target.key)
            if conn is not None and conn.alive():
                return conn
            via = self.get(target.jump) if target.jump else None
            conn = connect(target, via)
            self._conns[target.key] = conn
            return conn

    def warm(self, targets: Sequence[Target]) -> None:
        """Connect to `targets` in the background, so their first command skips the handshake
        (a rollout warms the next wave while the current one waits on its health gates). A
        failed warm-up is forgotten: the host's own first command connects again, so a host
        that was down a minute earlier is not written off, and it waits no longer than it
        would have without warming."""

        def one(target: Target) -> None:
            try:
                self.get(target)
            except Exception:  # the host's own `get` meets and reports it
                return
            with self._guard:  # closed meanwhile: this connection came too late to be used
                late = self._conns.pop(target.key, None) if self._closed else None
            if late is not None:
                late.close()

        for target in targets:
            threading.Thread(target=one, args=(target,), name="ssh-warm", daemon=True).start()

    def drop(self, target: Target) -> None:
        with self._guard:
            conn = self._conns.pop(target.key, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        # Warm-ups still connecting are not waited for (a dead host would hold the exit for its
        # whole timeout): each closes its own connection when it finds the pool closed.
        with self._guard:
            self._closed = True
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._conns.values()))


def load_public_key(key_file: str) -> str:
    """The OpenSSH public line of a private key file (used to pin a new operator key)."""
    try:
        key = paramiko.PKey.from_path(key_file)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise RemoteError(f"cannot load key file {key_file}: {exc}") from None
    return f"{key.get_name()} {key.get_base64()}"
