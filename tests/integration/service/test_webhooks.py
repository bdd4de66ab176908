"""Signed webhooks from `fatctl serve` to a real HTTP receiver on loopback, on SQLite and on
PostgreSQL, against the API emulators (API-only: the provision flow's end is its infra state).

The receiver checks every request's `Fatctl-Signature` the way docs/operations.md tells a
platform to (HMAC-SHA256 over `<t>.<body>`, a 300 s window). Pauses between attempts go
through the delivery policy's `sleep`, which the tests record instead of waiting.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.service.conftest import (
    Service,
    make_tokens,
    runtime_for,
    service_plane,
)

SECRET = "whsec_test-" + "k" * 40


@dataclass
class Receiver:
    """A platform's webhook endpoint: answers `fail_with` to the first `failures` requests,
    then 200; keeps every request with whether its signature verified."""

    secret: str
    failures: int = 0
    fail_with: int = 500
    seen: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        from fatctl.service.webhooks import signing

        try:
            signing.verify(self.secret.encode(), headers.get("fatctl-signature", ""), body,
                           time.time())  # fmt: skip
            verified = True
        except signing.SignatureError:
            verified = False
        self.seen.append({"headers": headers, "body": body, "verified": verified})
        return self.fail_with if len(self.seen) <= self.failures else 200

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.seen]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            code = got.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/fatctl"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Hooked:
    svc: Service
    receiver: Receiver
    pauses: list[float]


@pytest.fixture
def hooked(
    tmp_path: Path,
    hetzner_emulator: Any,
    cloudflare_emulator: Any,
    db_url: str,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Hooked]:
    """The serve fixture's service, with a webhook URL, the signing secret stored sealed and a
    delivery policy of 4 attempts whose pauses are recorded, not waited."""
    import dbos._dbos as dbos_module
    from fastapi.testclient import TestClient

    from fatctl.sensitive import Sensitive
    from fatctl.service.api.app import create_app
    from fatctl.service.webhooks.delivery import Policy, using
    from fatctl.service.webhooks.target import store_secret
    from fatctl.state.db import session_scope

    caplog.set_level(logging.DEBUG)
    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url)
    plane = dataclasses.replace(
        plane, settings=dataclasses.replace(plane.settings, webhook_url=receiver.url)
    )
    with session_scope(plane.db) as session:
        store_secret(session, plane.ring, Sensitive(SECRET))
    runtime = runtime_for(plane)
    pauses: list[float] = []
    try:
        app = create_app(runtime)
        with (
            using(Policy(max_attempts=4, sleep=pauses.append)),
            TestClient(app, raise_server_exceptions=False) as client,
        ):
            yield Hooked(Service(plane, runtime, client, make_tokens(plane.db)), receiver, pauses)
        assert dbos_module._dbos_global_instance is None
    finally:
        plane.db.dispose()


def create_and_wait(h: Hooked, name: str = "alpha") -> dict[str, Any]:
    """Create the agent through the API; (provision result, its agent.ready delivery)."""
    from dbos import DBOS

    from fatctl.service.webhooks.delivery import workflow_id
    from fatctl.service.webhooks.events import event_id_for

    body = {"name": name, "owner_email": "demo@example.com"}
    answer = h.svc.client.post("/v1/agents", json=body, headers=h.svc.headers("writer"))
    assert answer.status_code == 202, answer.text
    wfid = answer.json()["workflow_id"]
    result = h.svc.wait(wfid)
    event_id = event_id_for(f"{wfid}:agent.ready")
    delivered = DBOS.retrieve_workflow(workflow_id(event_id)).get_result()
    return {"result": result, "event_id": event_id, "delivery": delivered}


def row(h: Hooked, event_id: str) -> Any:
    from fatctl.service.webhooks.delivery import find
    from fatctl.state.db import session_scope

    with session_scope(h.svc.plane.db) as session:
        return find(session, event_id)


def test_agent_ready_and_destroyed_reach_the_receiver_signed(hooked: Hooked) -> None:
    from dbos import DBOS

    from fatctl.service.webhooks.delivery import workflow_id
    from fatctl.service.webhooks.events import event_id_for

    done = create_and_wait(hooked)
    assert done["delivery"]["result"] == "delivered" and done["delivery"]["attempts"] == 1
    (request,) = hooked.receiver.seen
    assert request["verified"]
    assert request["headers"]["fatctl-event-id"] == done["event_id"]
    assert request["headers"]["fatctl-event-type"] == "agent.ready"
    event = json.loads(request["body"])
    assert set(event) == {"id", "type", "created_at", "agent", "data"}
    assert (event["id"], event["type"], event["agent"]) == (done["event_id"], "agent.ready",
                                                            "alpha")  # fmt: skip
    result = done["result"]
    assert event["data"] == {"state": "provisioning", "server_id": result["server_id"],
                             "ipv4": result["ipv4"], "ipv6": result["ipv6"],
                             "fqdn": "alpha.sandbox.test"}  # fmt: skip
    stored = row(hooked, done["event_id"])
    assert stored.delivered_at and stored.attempts == 1 and stored.dead_at is None
    assert stored.payload.encode() == request["body"]  # the stored body is what was signed
    assert hooked.pauses == []

    gone = hooked.svc.client.delete("/v1/agents/alpha", headers=hooked.svc.headers("writer"))
    assert gone.status_code == 202, gone.text
    wfid = gone.json()["workflow_id"]
    hooked.svc.wait(wfid)
    destroyed = event_id_for(f"{wfid}:agent.destroyed")
    assert DBOS.retrieve_workflow(workflow_id(destroyed)).get_result()["result"] == "delivered"
    last = hooked.receiver.events()[-1]
    assert (last["type"], last["agent"], last["data"]) == ("agent.destroyed", "alpha",
                                                           {"state": "destroyed"})  # fmt: skip
    assert all(r["verified"] for r in hooked.receiver.seen)


def test_failures_back_off_then_dead_letter_and_redeliver_works(
    hooked: Hooked, caplog: pytest.LogCaptureFixture
) -> None:
    """Backoff, dead letter and redelivery; after five signed attempts the secret is in no
    row (fatctl's, or DBOS's stored inputs and outputs), no log record and no request."""
    from fatctl.service.webhooks.listing import deliveries, redeliver

    hooked.receiver.failures = 100
    done = create_and_wait(hooked)
    assert done["delivery"]["result"] == "dead" and done["delivery"]["attempts"] == 4
    assert done["delivery"]["error"] == "HTTP 500"
    # Each failed attempt but the last paused twice as long as the one before.
    assert hooked.pauses == [10.0, 20.0, 40.0]
    seen = hooked.receiver.seen
    assert len(seen) == 4 and all(r["verified"] for r in seen)
    assert len({r["body"] for r in seen}) == 1  # the same event each time
    dead = deliveries(hooked.svc.plane.db, dead_only=True)
    assert [(d["event_id"], d["state"], d["attempts"], d["last_error"]) for d in dead] == [
        (done["event_id"], "dead", 4, "HTTP 500")
    ]

    hooked.receiver.failures = 0
    plane = hooked.svc.plane
    again = redeliver(plane.db, plane.ring, plane.settings, done["event_id"])
    assert again["result"] == "delivered" and again["attempts"] == 5
    assert len(hooked.receiver.seen) == 5 and hooked.receiver.seen[-1]["verified"]
    assert hooked.receiver.seen[-1]["body"] == seen[0]["body"]
    assert deliveries(plane.db, dead_only=True) == []
    assert row(hooked, done["event_id"]).delivered_at is not None

    everything = _every_value(plane.db, plane.settings.database_url)
    assert done["event_id"] in everything and "webhook_attempt" in everything  # it looked
    assert SECRET not in everything and SECRET not in caplog.text
    for request in hooked.receiver.seen:
        assert SECRET.encode() not in request["body"]
        assert all(SECRET not in v for v in request["headers"].values())


def test_a_410_stops_retrying_at_once(hooked: Hooked) -> None:
    hooked.receiver.failures, hooked.receiver.fail_with = 100, 410
    done = create_and_wait(hooked)
    assert done["delivery"]["result"] == "dead" and done["delivery"]["attempts"] == 1
    assert len(hooked.receiver.seen) == 1 and hooked.pauses == []
    assert row(hooked, done["event_id"]).last_error == "HTTP 410"


def _every_value(db: Any, url: str) -> str:
    """Every row of every table fatctl and DBOS keep, as text."""
    from sqlalchemy import inspect, text

    inspector = inspect(db)
    schemas = [None] if url.startswith("sqlite") else [None, "dbos"]
    dumped: list[str] = []
    with db.connect() as conn:
        for schema in schemas:
            for table in inspector.get_table_names(schema=schema):
                name = f'"{schema}"."{table}"' if schema else f'"{table}"'
                dumped.extend(repr(r) for r in conn.execute(text(f"SELECT * FROM {name}")))
    return "\n".join(dumped)


def test_cli_secret_list_and_redeliver(tmp_path: Path, receiver: Receiver) -> None:
    """The secret is written once into a new 0600 file and nowhere else; list shows the dead
    letter; redeliver sends it signed with that secret; bad input is exit 2, nothing written."""
    from fatctl.secrets import generate_master_key
    from fatctl.service.webhooks.events import record
    from fatctl.state.db import make_engine, session_scope
    from fatctl.state.models import WebhookDelivery

    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path), FATCTL_MASTER_KEY=generate_master_key(),
                     FATCTL_WEBHOOK_URL=receiver.url)  # fmt: skip
    run_fatctl("db", "upgrade", env=env, timeout=120, check=0)
    out = tmp_path / "handover" / "webhook-secret"
    out.parent.mkdir()
    rotated = run_fatctl("webhooks", "secret", "rotate", "--out", str(out), "--json", env=env,
                         timeout=120, check=0)  # fmt: skip
    secret = out.read_text().strip()
    assert secret.startswith("whsec_") and stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert secret not in rotated.stdout + rotated.stderr
    assert json.loads(rotated.stdout)["written_to"] == str(out)
    again = run_fatctl("webhooks", "secret", "rotate", "--out", str(out), env=env, timeout=120,
                       check=2)  # fmt: skip
    assert "exists" in again.stderr and out.read_text().strip() == secret
    short = run_fatctl("webhooks", "secret", "set", env=env, timeout=120, input="too-short\n",
                       check=2)  # fmt: skip
    assert short.stdout == "" and short.stderr.count("\n") == 1

    url = f"sqlite:///{tmp_path / 'fatctl.sqlite'}"
    db = make_engine(url)
    settings = dataclasses.replace(_settings(env), database_url=url)
    with session_scope(db) as session:
        event_id = record(session, settings, "rollout.finished", None, {"rollout": 7})
        assert event_id is not None
        stored = session.get(WebhookDelivery, 1)
        assert stored is not None
        stored.attempts, stored.dead_at, stored.last_error = 4, stored.created_at, "HTTP 500"
    db.dispose()
    database = b"".join(p.read_bytes() for p in tmp_path.glob("fatctl.sqlite*"))
    assert secret.encode() not in database

    listed = json.loads(run_fatctl("webhooks", "list", "--dead", "--json", env=env, timeout=120,
                                   check=0).stdout)  # fmt: skip
    assert [(e["event_id"], e["kind"], e["state"]) for e in listed] == [
        (event_id, "rollout.finished", "dead")
    ]
    receiver.secret = secret
    sent = run_fatctl("webhooks", "redeliver", event_id, "--json", env=env, timeout=120, check=0)
    assert json.loads(sent.stdout)["result"] == "delivered"
    assert receiver.seen[-1]["verified"] and receiver.events()[-1]["data"] == {"rollout": 7}
    assert json.loads(run_fatctl("webhooks", "list", "--dead", "--json", env=env, timeout=120,
                                 check=0).stdout) == []  # fmt: skip
    run_fatctl("webhooks", "redeliver", "evt_nope", env=env, timeout=120, check=2)
    audit = run_fatctl("audit", "--json", env=env, timeout=120, check=0).stdout
    assert "webhooks.secret.rotate" in audit and "webhooks.redeliver" in audit
    assert secret not in audit


def _settings(env: dict[str, str]) -> Any:
    from fatctl.config import load_settings

    return load_settings(env)


def test_signature_refuses_a_tampered_body_a_replay_and_a_wrong_secret() -> None:
    from fatctl.service.webhooks import signing

    key, body, at = b"k" * 32, b'{"id":"evt_1"}', 1_765_084_800
    header = signing.sign(key, at, body)
    assert signing.verify(key, header, body, now=at + 299) == at
    assert signing.verify(key, f"{header},v1={'0' * 64}", body, now=at) == at  # any v1 matches
    refused = [
        (key, header, body + b" ", at),  # tampered body
        (key, header, body, at + 301),  # replayed after the window
        (key, header, body, at - 301),  # from the future
        (b"x" * 32, header, body, at),  # another secret
        (key, f"t={at}", body, at),  # no signature
        (key, "garbage", body, at),
    ]
    for secret, value, sent, now in refused:
        with pytest.raises(signing.SignatureError):
            signing.verify(secret, value, sent, now=now)


@pytest.mark.parametrize(
    ("url", "ok"),
    [("https://platform.example/hooks", True), ("http://127.0.0.1:9/h", True),
     ("http://[::1]:9/h", True), ("http://localhost/h", True),
     ("http://platform.example/hooks", False), ("ftp://platform.example/", False),
     ("https://user:pw@platform.example/", False), ("platform.example", False)],
)  # fmt: skip
def test_webhook_url_is_https_or_loopback_http(url: str, ok: bool) -> None:
    from fatctl.errors import ConfigError
    from fatctl.service.webhooks.target import checked_url

    if ok:
        assert checked_url(url) == url
    else:
        with pytest.raises(ConfigError):
            checked_url(url)


def test_a_delivery_cut_by_a_killed_server_is_finished_after_the_restart(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str,
    receiver: Receiver,
) -> None:  # fmt: skip
    """`fatctl serve --no-box` (a real process, FATCTL_WEBHOOK_URL set) provisions, and its
    delivery's first POST is held by the receiver while the process is SIGKILLed: the attempt
    was never recorded, the workflow stays PENDING under the server's executor id (DBOS:
    "When an application with an executor ID restarts, it only recovers pending workflows
    assigned to that executor ID", docs.dbos.dev, production/self-hosting/workflow-recovery).
    A relaunch with that id sends the event again and it is delivered: at least once, one row.
    Before that, a plain-http URL to another host, or a URL without a stored signing secret,
    keeps `fatctl serve` from starting (exit 2)."""
    import socket

    from dbos import DBOS

    from fatctl.infra import make_engine
    from fatctl.secrets import generate_master_key
    from fatctl.sensitive import Sensitive
    from fatctl.service.context import Runtime
    from fatctl.service.runtime import running
    from fatctl.service.webhooks.delivery import workflow_id
    from fatctl.service.webhooks.events import event_id_for
    from fatctl.service.webhooks.listing import deliveries
    from fatctl.service.webhooks.target import store_secret
    from fatctl.state.db import session_scope
    from tests.fixtures.cli import start_fatctl
    from tests.integration.service.test_recovery import (
        free_port,
        serve_env,
        serving_api,
        wait_until,
    )

    key = generate_master_key()
    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url, master_key=key)
    env = {**serve_env(plane, key, tmp_path), "FATCTL_WEBHOOK_URL": receiver.url}
    for bad, why in [({**env, "FATCTL_WEBHOOK_URL": "http://platform.example/h"}, "https"),
                     (env, "no webhook signing secret")]:  # fmt: skip
        refused = run_fatctl("serve", "--no-box", "--port", str(free_port()), env=bad,
                             timeout=120, check=2)  # fmt: skip
        assert refused.stderr.count("\n") == 1 and why in refused.stderr, refused.stderr
    with session_scope(plane.db) as session:
        store_secret(session, plane.ring, Sensitive(SECRET))
    tokens = make_tokens(plane.db)
    held, release = threading.Event(), threading.Event()
    answer_first = receiver.answer

    def hold_the_first(headers: dict[str, str], body: bytes) -> int:
        if not held.is_set():
            held.set()
            release.wait()  # no answer until the server is dead
        return answer_first(headers, body)

    receiver.answer = hold_the_first  # type: ignore[method-assign]
    port, log = free_port(), (tmp_path / "serve.log").open("w")
    proc = start_fatctl("serve", "--no-box", "--port", str(port), env=env, stdout=log,
                        stderr=log)  # fmt: skip
    try:
        api = serving_api(proc, port, tokens["writer"], tmp_path / "serve.log")
        answer = api.post("/v1/agents", json={"name": "alpha", "owner_email": "demo@example.com"})
        assert answer.status_code == 202, answer.text
        wfid = answer.json()["workflow_id"]
        wait_until("the first delivery attempt arrives", held.is_set)
    finally:
        proc.kill()
        proc.wait()
        log.close()
        release.set()
    event_id = event_id_for(f"{wfid}:agent.ready")
    assert [(d["event_id"], d["state"], d["attempts"]) for d in deliveries(plane.db)] == [
        (event_id, "pending", 0)
    ]

    settings = dataclasses.replace(plane.settings, webhook_url=receiver.url)
    rt = Runtime(plane.db, plane.ring, settings, lambda: make_engine(settings), skip_box=True,
                 executor_id=f"serve-{socket.gethostname()}", queue_poll_s=0.05)  # fmt: skip
    with running(rt):
        outcome = DBOS.retrieve_workflow(workflow_id(event_id)).get_result()
        assert DBOS.retrieve_workflow(wfid).get_result()["state"] == "provisioning"
    assert outcome["result"] == "delivered" and outcome["attempts"] == 1
    assert len(receiver.seen) == 2 and all(r["verified"] for r in receiver.seen)
    assert receiver.seen[0]["body"] == receiver.seen[1]["body"]
    assert [(d["state"], d["attempts"]) for d in deliveries(plane.db)] == [("delivered", 1)]
    plane.db.dispose()


def test_a_context_never_inherits_the_top_levels_webhook(tmp_path: Path) -> None:
    """Staging's events must not reach production's platform: `webhooks` is the fleet's own."""
    from fatctl.config import load_settings

    config = tmp_path / "fatctl.toml"
    config.write_text(
        '[webhooks]\nurl = "https://platform.example/hooks"\n\n'
        '[contexts.staging]\ndomain = "staging.example.com"\n\n'
        '[contexts.other]\nwebhooks.url = "https://staging.example/hooks"\n'
    )
    env = {"FATCTL_CONFIG": str(config), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "FATCTL_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    assert load_settings(env).webhook_url == "https://platform.example/hooks"
    assert load_settings(env, context="staging").webhook_url == ""
    assert load_settings(env, context="other").webhook_url == "https://staging.example/hooks"


def test_events_and_attempts_read_the_service_clock(hooked: Hooked) -> None:
    """Review 28 L1: an event's created_at and its delivery's delivered_at read the wall clock
    instead of the runtime's injected clock (the one the schedules judge by)."""
    from datetime import UTC, datetime

    from fatctl.clock import fixed

    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    hooked.svc.runtime.clock = fixed(at)
    done = create_and_wait(hooked)
    stored = row(hooked, done["event_id"])
    stamps = [stored.created_at, stored.delivered_at]
    assert [s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps] == [at, at]
    assert json.loads(stored.payload)["created_at"] == at.isoformat()
    # The signature's t= is the same instant (a receiver's window then refuses it: 2026-03-01).
    assert f"t={int(at.timestamp())}," in hooked.receiver.seen[0]["headers"]["fatctl-signature"]


def test_a_rotated_secret_keeps_the_replaced_one_signing_for_the_overlap(
    tmp_path: Path, migrated_engine: Any, receiver: Receiver
) -> None:
    """Review 28 L3: a rotation switched the signature at once, so every delivery until the
    platform installed the new secret failed its check and was dead-lettered. The header now
    carries `v1=<new>,v1=<replaced>` until the overlap ends (signing.py's docstring: "Several
    `v1=` entries may appear (a receiver accepts any that matches)"), then the new one only."""
    from datetime import timedelta

    from fatctl.clock import fixed, wall_clock
    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.sensitive import Sensitive
    from fatctl.service.webhooks import signing
    from fatctl.service.webhooks.delivery import attempt
    from fatctl.service.webhooks.events import record
    from fatctl.service.webhooks.target import new_secret, secret_overlap, store_secret
    from fatctl.state.db import session_scope

    ring = keyring_from(Sensitive(generate_master_key()))
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path), FATCTL_WEBHOOK_URL=receiver.url)
    settings = _settings(env)
    assert secret_overlap(settings) == timedelta(hours=24)  # the default
    newer = new_secret()
    rotated_at = wall_clock() - timedelta(hours=23)  # an hour of overlap left now
    with session_scope(migrated_engine) as session:
        store_secret(session, ring, Sensitive(SECRET))  # the one the platform has
        store_secret(session, ring, newer, now=rotated_at, overlap=secret_overlap(settings))
        first = record(session, settings, "rollout.finished", None, {"rollout": 1})
        second = record(session, settings, "rollout.finished", None, {"rollout": 2})
    assert first and second

    assert attempt(migrated_engine, ring, settings, first)["result"] == "delivered"
    _, entries = signing.parse(receiver.seen[-1]["headers"]["fatctl-signature"])
    assert len(entries) == 2 and receiver.seen[-1]["verified"]  # the platform's old secret
    # Two hours later the overlap is over: the new secret alone signs.
    later = fixed(wall_clock() + timedelta(hours=2))
    assert attempt(migrated_engine, ring, settings, second, clock=later)["result"] == "delivered"
    header = receiver.seen[-1]["headers"]["fatctl-signature"]
    timestamp, entries = signing.parse(header)
    assert len(entries) == 1 and not receiver.seen[-1]["verified"]
    assert signing.verify(newer.reveal().encode(), header, receiver.seen[-1]["body"], timestamp)

    bad = dataclasses.replace(settings, webhook_secret_overlap_h="a day")
    with pytest.raises(Exception, match="FATCTL_WEBHOOK_SECRET_OVERLAP_H"):
        secret_overlap(bad)
