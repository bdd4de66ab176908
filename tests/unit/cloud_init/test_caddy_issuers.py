"""Certificates past Let's Encrypt's weekly limit (issue 17): with `acme_email` set, the box's
Caddyfile names its ACME account and Caddy issues from Let's Encrypt, then ZeroSSL.

Let's Encrypt's rate limits (letsencrypt.org/docs/rate-limits): "New Certificates per
Registered Domain: 50 per 7 days", renewals of the same set of names excepted; every agent is
`<agent>.<domain>` under one registered domain, so one domain caps signups at about 50 a week.
Caddy's Automatic HTTPS page: "Caddy serves public DNS names over HTTPS using certificates from
a public ACME CA such as Let's Encrypt or ZeroSSL"; its default issuers are Let's Encrypt's
ACME endpoint and, once an account e-mail is configured, ZeroSSL's (caddy commit "httpcaddyfile:
Fix default issuers when email provided": "we should apply that to all applicable default
issuers, not drop them ... like ZeroSSL"), tried in that order. ZeroSSL's ACME service sets no
weekly certificate cap. The test reads the issuers from `caddy adapt`, Caddy's own translation
of the rendered file (Caddy 2.6.2 here, Debian's, the boxes' package), and runs `caddy
validate` on it as on every rendered Caddyfile.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from cloud_init.checks import check_caddyfile
from cloud_init.render import render_files
from fatctl.config import Settings
from fatctl.domain import ServicePlan
from fatctl.errors import ConfigError
from tests.unit.cloud_init.variants import Variant, make_spec

CADDYFILE = "/etc/caddy/Caddyfile"
STOCK = Variant("debian-12", False, ServicePlan.MANAGED, False)


def _issuers(caddyfile: str) -> list[str]:
    with tempfile.TemporaryDirectory() as home:
        Path(home, "Caddyfile").write_text(caddyfile)
        out = subprocess.run(
            ["caddy", "adapt", "--config", "Caddyfile", "--adapter", "caddyfile"],
            cwd=home, env={"HOME": home, "PATH": "/usr/bin:/bin:/usr/local/bin"},
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
    policies = json.loads(out.stdout)["apps"].get("tls", {}).get("automation", {})
    return [i["module"] for p in policies.get("policies", []) for i in p.get("issuers", [])]


def test_acme_email_makes_zerossl_the_fallback_issuer() -> None:
    spec = dataclasses.replace(make_spec(STOCK), acme_email="certs@example.com")
    files = render_files(spec)
    caddyfile = files[CADDYFILE].content
    assert "\temail certs@example.com\n" in caddyfile
    assert _issuers(caddyfile) == ["acme", "zerossl"]  # Let's Encrypt first, then ZeroSSL
    assert check_caddyfile({CADDYFILE: caddyfile}) == []


def test_without_an_address_the_caddyfile_is_as_before() -> None:
    caddyfile = render_files(make_spec(STOCK))[CADDYFILE].content
    assert "email" not in caddyfile and _issuers(caddyfile) == []


def test_the_sandbox_internal_ca_takes_no_acme_account() -> None:
    spec = dataclasses.replace(make_spec(STOCK), acme_email="c@example.com", tls_internal=True)
    assert "email" not in render_files(spec)[CADDYFILE].content


@pytest.mark.parametrize(
    "bad", ["a{b}@example.com", "x@example.com\n}", "a b@example.com", "no-at"]
)
def test_an_address_that_could_inject_caddy_syntax_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a plain e-mail address"):
        _ = Settings(data_dir=Path("/nonexistent"), database_url="sqlite://",
                     acme_email=bad).checked_acme_email  # fmt: skip
