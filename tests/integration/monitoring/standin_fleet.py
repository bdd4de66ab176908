"""Stand-in boxes for the prober: one asyncio HTTPS server answering `/readyz` for many agents.

Each request's Host header (the prober also sends the name as TLS SNI) says which agent is
asked, and the agent's behaviour says how it answers, the way OpenClaw's gateway does behind
Caddy (docs/gateway/health.md; dist/server-start-*.mjs `handleGatewayProbeRequest`: "statusCode
= result.ready ? 200 : 503; body = JSON.stringify(includeDetails ? result : { ready:
result.ready })", with `Content-Type: application/json; charset=utf-8` and `Cache-Control:
no-store`; a remote caller gets no details):

    ok         200 {"ready":true}
    down       503 {"ready":false}
    flap       down and ok by turns, one request each
    slow:S     ok after S seconds
    close      reads the request, closes without answering (a proxy whose upstream died)

The certificate is a wildcard for the fleet's domain from a throwaway CA (`throwaway_ca`),
which only the prober is told to trust. Run as a process (`python -m
tests.integration.monitoring.standin_fleet CONFIG`); it prints `PORT <n>` once listening and
takes behaviour changes as JSON lines on stdin ({"agent": "behaviour", ...}), answering `ok`.
Several processes may share one port (SO_REUSEPORT) to use more cores in the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Pems:
    ca: str
    cert: str
    key: str


def throwaway_ca(domain: str) -> Pems:
    """A CA made for one run, and a certificate for `*.<domain>` it signed."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in fleet CA")])

    def signed(subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName(f"*.{domain}"), x509.DNSName(domain)]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")])
    ca_cert, leaf = signed(ca_name, ca_key, True), signed(leaf_name, leaf_key, False)
    pem = serialization.Encoding.PEM
    key = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Pems(ca_cert.public_bytes(pem).decode(), leaf.public_bytes(pem).decode(), key.decode())


class Behaviours:
    """What each agent answers; unknown agents answer `default`."""

    def __init__(self, table: Mapping[str, str], default: str = "ok", delay_s: float = 0.0):
        self.table = dict(table)
        self.default = default
        self.delay_s = delay_s  # injected before every answer: the network and the box
        self._turns: dict[str, int] = {}

    def answer(self, agent: str) -> tuple[float, int | None]:
        """(seconds to wait, HTTP status or None to close without answering)."""
        kind = self.table.get(agent, self.default)
        if kind.startswith("slow:"):
            return self.delay_s + float(kind.split(":", 1)[1]), 200
        if kind == "flap":
            turn = self._turns[agent] = self._turns.get(agent, 0) + 1
            return self.delay_s, 503 if turn % 2 else 200
        return self.delay_s, {"ok": 200, "down": 503, "close": None}[kind]


def _response(status: int) -> bytes:
    body = json.dumps({"ready": status == 200}, separators=(",", ":")).encode()
    reason = "OK" if status == 200 else "Service Unavailable"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _agent(request: bytes) -> str:
    for line in request.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            return value.strip().decode().split(":")[0].split(".")[0]
    return ""


async def _serve(config: dict, certfile: str, keyfile: str) -> None:
    behaviours = Behaviours(config["agents"], config.get("default", "ok"), config.get("delay_s", 0))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            wait, status = behaviours.answer(_agent(request))
            if wait:
                await asyncio.sleep(wait)
            if status is not None:
                writer.write(_response(status))
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()

    # Every address answers on the same port, as boxes at their own addresses do; the first
    # picks the port when none is given.
    hosts = config.get("hosts") or ["127.0.0.1"]
    servers = [await asyncio.start_server(
        handle, hosts[0], config.get("port", 0), ssl=context, backlog=8192, reuse_port=True,
    )]  # fmt: skip
    port = servers[0].sockets[0].getsockname()[1]
    for host in hosts[1:]:
        servers.append(await asyncio.start_server(
            handle, host, port, ssl=context, backlog=8192, reuse_port=True,
        ))  # fmt: skip
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with contextlib.AsyncExitStack() as stack:
        for each in servers:
            await stack.enter_async_context(each)
        while line := await reader.readline():
            behaviours.table.update(json.loads(line))
            print("ok", flush=True)


class StandinFleet:
    """The server processes, started and stopped by pid; `set` changes behaviours."""

    def __init__(self, procs: list[subprocess.Popen[str]], port: int, pems: Pems) -> None:
        self.procs, self.port, self.pems = procs, port, pems

    def set(self, changes: Mapping[str, str]) -> None:
        for proc in self.procs:
            assert proc.stdin and proc.stdout
            proc.stdin.write(json.dumps(dict(changes)) + "\n")
            proc.stdin.flush()
            if proc.stdout.readline().strip() != "ok":
                raise RuntimeError("stand-in fleet did not take the change")


@contextmanager
def standin_fleet(
    tmp: Path,
    domain: str,
    agents: Mapping[str, str],
    *,
    delay_s: float = 0.0,
    processes: int = 1,
    hosts: tuple[str, ...] = ("127.0.0.1",),
) -> Iterator[StandinFleet]:
    pems = throwaway_ca(domain)
    (tmp / "cert.pem").write_text(pems.cert)
    (tmp / "key.pem").write_text(pems.key)
    config = {"agents": dict(agents), "delay_s": delay_s, "port": 0, "hosts": list(hosts)}
    procs: list[subprocess.Popen[str]] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        port = 0
        for _ in range(processes):
            (tmp / "fleet.json").write_text(json.dumps({**config, "port": port}))
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.monitoring.standin_fleet",
                 str(tmp / "fleet.json"), str(tmp / "cert.pem"), str(tmp / "key.pem")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env,
            )  # fmt: skip
            procs.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"stand-in fleet did not start: {line!r}")
            port = int(line.split()[1])
        yield StandinFleet(procs, port, pems)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="stand-in boxes answering /readyz")
    parser.add_argument("config")
    parser.add_argument("cert")
    parser.add_argument("key")
    args = parser.parse_args()
    asyncio.run(_serve(json.loads(Path(args.config).read_text()), args.cert, args.key))


if __name__ == "__main__":
    main()
