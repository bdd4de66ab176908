"""The prober against real HTTPS stand-ins on loopback: the certificate is checked against the
box's name sent as SNI (httpcore's `sni_hostname` becomes `server_hostname`), only the CA the
prober is given is trusted, and each kind of failure comes back as its own one line."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from fatctl.monitoring.probe import ProbeResult, ProbeTarget, run_sweep, trust
from tests.integration.monitoring.standin_fleet import StandinFleet, standin_fleet, throwaway_ca

DOMAIN = "fleet.test"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinFleet]:
    agents = {"up": "ok", "down": "down", "gone": "close", "slow": "slow:0.2", "stuck": "slow:30"}
    with standin_fleet(tmp_path_factory.mktemp("fleet"), DOMAIN, agents) as running:
        yield running


def probe(fleet: StandinFleet, host: str, *, ca: str | None = None, port: int = 0) -> ProbeResult:
    target = ProbeTarget(host.split(".")[0], host, "127.0.0.1", port or fleet.port)
    [result] = run_sweep([target], timeout_s=1.0, verify=trust(ca or fleet.pems.ca))
    return result


def test_each_behaviour_reads_as_the_gateway_means_it(fleet: StandinFleet) -> None:
    hosts = ["up", "down", "gone", "slow", "stuck"]
    targets = [ProbeTarget(h, f"{h}.{DOMAIN}", "127.0.0.1", fleet.port) for h in hosts]
    found = run_sweep(targets, timeout_s=1.0, verify=trust(fleet.pems.ca))
    assert [(r.agent, r.ok, r.status, r.reason) for r in found] == [
        ("up", True, 200, ""),
        ("down", False, 503, "gateway not ready (HTTP 503)"),
        ("gone", False, None, "127.0.0.1 closed the connection without an answer"),
        ("slow", True, 200, ""),
        ("stuck", False, None, "no answer from 127.0.0.1 within 1 s"),
    ]


def test_the_certificate_is_checked_against_the_name_sent_as_sni(fleet: StandinFleet) -> None:
    """The connection goes to 127.0.0.1, whose address is in no certificate: only a check
    against the SNI name can pass, and a name the certificate does not cover must fail."""
    assert probe(fleet, f"up.{DOMAIN}").ok
    wrong = probe(fleet, "up.elsewhere.test")
    assert not wrong.ok
    assert wrong.reason.startswith("certificate for up.elsewhere.test not trusted: Hostname")


def test_only_the_given_ca_is_trusted(fleet: StandinFleet) -> None:
    other = throwaway_ca(DOMAIN).ca
    refused = probe(fleet, f"up.{DOMAIN}", ca=other)
    assert (refused.ok, refused.status) == (False, None)
    assert "not trusted" in refused.reason


def test_nothing_listening_is_a_refused_connection(fleet: StandinFleet) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    result = probe(fleet, f"up.{DOMAIN}", port=free)
    assert (result.ok, result.reason) == (False, "connection to 127.0.0.1 refused")


def test_a_change_of_behaviour_is_seen_by_the_next_probe(fleet: StandinFleet) -> None:
    fleet.set({"down": "ok"})
    try:
        assert probe(fleet, f"down.{DOMAIN}").ok
    finally:
        fleet.set({"down": "down"})
