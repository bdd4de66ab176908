"""`fatctl serve`'s own notifications end to end on a migrated state database (SQLite and
PostgreSQL): a real SMTP server (aiosmtpd on loopback) and a real HTTP receiver get one message
when an alert starts and one when it ends, not one per run; a restart (a fresh call over the
same database) re-sends nothing; a full window sends what fits and summarises the rest in one
message; a failed send is tried again on the next run."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from fatctl.config import Settings
from fatctl.monitoring.notify import notify_fleet
from fatctl.monitoring.store import ProbeRow, write_sweep
from fatctl.sensitive import Sensitive
from fatctl.state import migrate
from fatctl.state.db import make_engine
from tests.fixtures.fleet_rows import seed_agents
from tests.unit.monitoring.test_metrics import execute

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
_HOLD = ("INSERT INTO repair_holds (agent_pk, kind, actor, reason, since) SELECT id, 'paged', "
         "'repair', 'gave up', ? FROM agents WHERE name = ?")  # fmt: skip


class Inbox:
    """aiosmtpd's handler: keeps each message's subject."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        mail = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[attr-defined]
        self.subjects.append(str(mail["Subject"]).strip())
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd's readiness check cannot follow port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, object]]
    fail_next: list[int]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = self.fail_next.pop(0) if self.fail_next else 200
        if status == 200:
            self.bodies.append(body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[tuple[type[Receiver], str]]:
    handler = type("R", (Receiver,), {"bodies": [], "fail_next": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def state(db_url: str) -> str:
    migrate.upgrade(db_url)
    seed_agents(db_url, 5)
    return db_url


def _settings(url: str, port: int, hook: str, per_window: int = 10) -> Settings:
    return Settings(
        data_dir=Path("/nonexistent"),
        database_url=url,
        notify_smtp_host="127.0.0.1",
        notify_smtp_port=str(port),
        notify_smtp_tls="none",
        notify_smtp_from="fatctl@ops.example",
        notify_smtp_to="oncall@ops.example",
        notify_webhook_url=Sensitive(hook),
        notify_max_per_window=str(per_window),
    )


def test_one_message_per_start_and_end_on_each_channel(state, smtp, webhook) -> None:
    (inbox, port), (receiver, hook) = smtp, webhook
    db, settings = make_engine(state), _settings(state, port, hook)
    execute(state, [(_HOLD, (T0, "agent00001"))])
    first = notify_fleet(db, settings, now=T0)
    assert first["notified"] == 2  # one e-mail, one webhook post
    assert inbox.subjects == ["[FIRING:page] Automatic repair gave up on agent00001; it needs "
                              "an operator"]  # fmt: skip
    [posted] = receiver.bodies
    assert [(a["alert"], a["status"]) for a in posted["alerts"]] == [("RepairPaged", "firing")]
    assert "agent00001" in str(posted["text"])
    # Later runs, and a restarted service (a fresh call over the same database): nothing new.
    for minutes in (5, 10):
        assert notify_fleet(make_engine(state), settings,
                            now=T0 + timedelta(minutes=minutes))["notified"] == 0  # fmt: skip
    assert len(inbox.subjects) == 1 and len(receiver.bodies) == 1
    # The page is released: one end, then quiet.
    execute(state, [("DELETE FROM repair_holds", ())])
    assert notify_fleet(db, settings, now=T0 + timedelta(minutes=15))["notified"] == 2
    assert notify_fleet(db, settings, now=T0 + timedelta(minutes=20))["notified"] == 0
    assert inbox.subjects[1].startswith("[RESOLVED:page] Automatic repair gave up on agent00001")
    assert [a["status"] for a in receiver.bodies[1]["alerts"]] == ["resolved"]


def test_a_full_window_sends_what_fits_and_summarises_the_rest(state, smtp, webhook) -> None:
    (inbox, port), (_receiver, hook) = smtp, webhook
    db, settings = make_engine(state), _settings(state, port, hook, per_window=2)
    execute(state, [(_HOLD, (T0, f"agent0000{i}")) for i in range(4)])
    notify_fleet(db, settings, now=T0)
    assert len(inbox.subjects) == 2  # the window's two: one alert, then the other three
    assert "agent00000" in inbox.subjects[0]
    assert inbox.subjects[1] == ("[fatctl] 3 alerts started, 0 ended (notification limit "
                                 "reached)")  # fmt: skip
    # Within the hour the window stays full: the end of one waits, then goes out.
    execute(state, [("DELETE FROM repair_holds WHERE agent_pk = (SELECT id FROM agents WHERE "
                     "name = 'agent00000')", ())])  # fmt: skip
    held = notify_fleet(db, settings, now=T0 + timedelta(minutes=5))
    assert (held["notified"], held["notify_held"]) == (0, 2)  # one end, on each channel
    assert len(inbox.subjects) == 2
    notify_fleet(db, settings, now=T0 + timedelta(minutes=65))
    assert inbox.subjects[2].startswith("[RESOLVED:page] Automatic repair gave up on agent00000")


def test_a_failed_send_is_tried_again_on_the_next_run(state, smtp, webhook) -> None:
    (_inbox, port), (receiver, hook) = smtp, webhook
    db, settings = make_engine(state), _settings(state, port, hook)
    execute(state, [(_HOLD, (T0, "agent00002"))])
    receiver.fail_next.append(503)
    first = notify_fleet(db, settings, now=T0)
    assert (first["notified"], first["notify_failed"]) == (1, 1) and receiver.bodies == []
    again = notify_fleet(db, settings, now=T0 + timedelta(minutes=5))
    assert (again["notified"], again["notify_failed"]) == (1, 0)  # the webhook, this time
    assert [a["key"] for a in receiver.bodies[0]["alerts"]] == ["RepairPaged{agent=agent00002,"
                                                                "kind=paged}"]  # fmt: skip


def test_no_channel_configured_does_nothing(state) -> None:
    assert notify_fleet(
        make_engine(state), Settings(data_dir=Path("/nonexistent"), database_url=state), now=T0
    ) == {"notify_channels": 0}


def test_an_agent_down_is_told_once_it_has_been_down_for_the_rules_for(
    state, smtp, webhook
) -> None:
    """AgentDown's `for: 10m` from the rules file, across runs: the pending state's start is
    read back from the database (SQLite keeps no offset), and only then the message goes."""
    (inbox, port), (_receiver, hook) = smtp, webhook
    db, settings = make_engine(state), _settings(state, port, hook)
    for minutes in (0, 5, 10):
        at = T0 + timedelta(minutes=minutes)
        write_sweep(db, [ProbeRow(4, at, False, "https", 503, 20.0, "HTTP 503")])
        notify_fleet(db, settings, now=at)
        assert len(inbox.subjects) == (1 if minutes == 10 else 0), minutes
    assert inbox.subjects == ["[FIRING:page] Agent agent00003 has not been ready for 10 minutes"]
    write_sweep(db, [ProbeRow(4, T0 + timedelta(minutes=15), True, "https", 200, 20.0, None)])
    notify_fleet(db, settings, now=T0 + timedelta(minutes=15))
    assert inbox.subjects[1].startswith("[RESOLVED:page] Agent agent00003")
