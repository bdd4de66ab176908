"""Cloudflare DNS ownership and R2 temporary credentials against the sandbox's emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fatctl.config import Settings
from fatctl.dns.cloudflare_dns import CloudflareDns
from fatctl.dns.r2_credentials import agent_prefix, issue_r2_credentials, needs_rotation
from fatctl.dns.records import ownership_comment
from fatctl.errors import BadInput, CloudError, ConfigError
from fatctl.pacing.retry import RateBudget
from fatctl.pacing.timing import Timing
from fatctl.sensitive import Sensitive

V4, V6 = "203.0.113.7", "2001:db8:7::1"


def cf_settings(emulator: Any, tmp_path: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = dict(
        data_dir=tmp_path,
        database_url="sqlite://",
        cloudflare_api_token=Sensitive(emulator.token),
        cloudflare_base_url=emulator.url,
        cloudflare_account_id=emulator.account_id,
        domain="sandbox.test",
        r2_bucket="fat-agents",
        r2_parent_access_key_id="parent-key-0001",
    )
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def dns(cloudflare_emulator: Any, tmp_path: Path) -> CloudflareDns:
    return CloudflareDns(
        cf_settings(cloudflare_emulator, tmp_path),
        timing=Timing.instant(),
        sleep=lambda s: None,
        budget=RateBudget("cf-test"),
    )


def ours(emulator: Any, name: str = "alice.sandbox.test") -> list[dict[str, Any]]:
    return sorted((r for r in emulator.records() if r["name"] == name), key=lambda r: r["type"])


def test_upsert_is_idempotent_and_tagged(dns: CloudflareDns, cloudflare_emulator: Any) -> None:
    first = dns.upsert("alice", V4, V6)
    assert [(c.name, c.action) for c in first] == [
        ("A alice.sandbox.test", "create"),
        ("AAAA alice.sandbox.test", "create"),
    ]
    records = ours(cloudflare_emulator)
    assert [(r["type"], r["content"], r["proxied"]) for r in records] == [
        ("A", V4, False),
        ("AAAA", V6, False),
    ]
    for r in records:
        # sandbox.test is a Free zone: no tags (refused there), owned by the exact comment
        assert r["comment"] == ownership_comment("alice") and not r["tags"]
    assert {c.action for c in dns.upsert("alice", V4, V6)} == {"same"}
    moved = dns.upsert("alice", "203.0.113.8", V6, proxied=True)
    assert [c.action for c in moved] == ["update", "update"]
    records = ours(cloudflare_emulator)
    assert (
        len(records) == 2
        and records[0]["content"] == "203.0.113.8"
        and records[0]["proxied"] is True
    )


def test_foreign_record_is_refused_with_one_line(
    dns: CloudflareDns, cloudflare_client: Any, cloudflare_emulator: Any
) -> None:
    zone = cloudflare_emulator.zone_id("sandbox.test")
    cloudflare_client.dns.records.create(
        zone_id=zone, name="bob.sandbox.test", type="A", content="198.51.100.1", ttl=1
    )
    with pytest.raises(CloudError) as err:
        dns.upsert("bob", V4, V6)
    assert err.value.code == "dns_not_owned"
    assert "not owned by fatctl" in err.value.one_line() and "\n" not in err.value.one_line()
    assert [r["content"] for r in ours(cloudflare_emulator, "bob.sandbox.test")] == ["198.51.100.1"]
    assert dns.delete("bob") == []  # not ours: left alone
    assert len(ours(cloudflare_emulator, "bob.sandbox.test")) == 1


def test_duplicates_of_ours_are_folded_and_delete_is_idempotent(
    dns: CloudflareDns, cloudflare_client: Any, cloudflare_emulator: Any
) -> None:
    zone = cloudflare_emulator.zone_id("sandbox.test")
    for content in (V4, "203.0.113.99"):  # what crashed runs could leave behind
        cloudflare_client.dns.records.create(
            zone_id=zone,
            name="alice.sandbox.test",
            type="A",
            content=content,
            ttl=1,
            comment=ownership_comment("alice"),
        )
    dns.upsert("alice", V4, "")
    a_records = [r for r in ours(cloudflare_emulator) if r["type"] == "A"]
    assert len(a_records) == 1 and a_records[0]["comment"] and a_records[0]["content"] == V4
    assert [c.action for c in dns.delete("alice")] == ["delete"]
    assert dns.delete("alice") == []
    assert ours(cloudflare_emulator) == []


def test_rate_limit_waits_what_cloudflare_says(cloudflare_emulator: Any, tmp_path: Path) -> None:
    sleeps: list[float] = []
    dns = CloudflareDns(
        cf_settings(cloudflare_emulator, tmp_path),
        timing=Timing(0.0, 1, 0.5, 600.0, 6),
        sleep=sleeps.append,
        budget=RateBudget("cf-429"),
    )
    cloudflare_emulator.set_faults(rate_limit_burst=2, retry_after=11)
    assert [c.action for c in dns.upsert("carol", V4, V6)] == ["create", "create"]
    # Each retry waits Retry-After; the budget's pacing (time stands still here) never longer.
    assert sleeps.count(11.0) == 2 and max(sleeps) <= 11.0, sleeps


def test_missing_domain_is_a_config_error(cloudflare_emulator: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FATCTL_DOMAIN"):
        CloudflareDns(cf_settings(cloudflare_emulator, tmp_path, domain=""))


def test_r2_credentials_scoped_to_the_prefix(cloudflare_emulator: Any, tmp_path: Path) -> None:
    fixed = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)
    creds = issue_r2_credentials(
        cf_settings(cloudflare_emulator, tmp_path),
        "a-42",
        ttl=timedelta(days=7),
        timing=Timing.instant(),
        clock=lambda: fixed,
    )
    assert creds.prefix == "agents/a-42/" and creds.bucket == "fat-agents"
    assert creds.expires_at == fixed + timedelta(days=7)
    assert creds.access_key_id and creds.secret_access_key.reveal() and creds.session_token.reveal()
    text = repr(creds)
    assert creds.secret_access_key.reveal() not in text and creds.session_token.reveal() not in text
    (issued,) = cloudflare_emulator._emulator.store.all("r2_credential")
    assert issued["prefixes"] == ["agents/a-42/"] and issued["permission"] == "object-read-write"
    assert issued["parent_access_key_id"] == "parent-key-0001" and issued["bucket"] == "fat-agents"


def test_r2_refuses_bad_input_and_missing_settings(
    cloudflare_emulator: Any, tmp_path: Path
) -> None:
    settings = cf_settings(cloudflare_emulator, tmp_path)
    with pytest.raises(BadInput):
        issue_r2_credentials(settings, "a-1", ttl=timedelta(days=8))
    with pytest.raises(BadInput):
        agent_prefix("../etc")
    with pytest.raises(ConfigError, match="FATCTL_R2_PARENT_ACCESS_KEY_ID"):
        issue_r2_credentials(
            cf_settings(cloudflare_emulator, tmp_path, r2_parent_access_key_id=""), "a-1"
        )


def test_rotation_window() -> None:
    now = datetime(2026, 11, 21, tzinfo=UTC)
    assert not needs_rotation(now + timedelta(days=5), now)
    assert needs_rotation(now + timedelta(days=2), now)
    assert needs_rotation(now - timedelta(minutes=1), now)
