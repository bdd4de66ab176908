"""No secret reaches user-data or the box files, except the host private key in `ssh_keys`."""

from __future__ import annotations

import re

import pytest
import yaml

from cloud_init.render import render_files, render_user_data
from fatctl.domain import HostKeyPair
from fatctl.sensitive import redact
from tests.unit.cloud_init.variants import VARIANTS, Variant, make_spec


def _key_lines(key: HostKeyPair) -> list[str]:
    return [ln for ln in key.private_key_pem.splitlines() if ln and not ln.startswith("-----")]


@pytest.mark.parametrize("variant", VARIANTS[::3], ids=lambda v: v.id)
def test_host_private_key_only_in_ssh_keys(variant: Variant, host_key: HostKeyPair) -> None:
    spec = make_spec(variant, host_keys=(host_key,))
    text = render_user_data(spec)
    for line in _key_lines(host_key):
        assert text.count(line) == 1
    doc = yaml.safe_load(text)
    assert doc["ssh_keys"]["ed25519_private"] == host_key.private_key_pem
    del doc["ssh_keys"]
    rest = yaml.safe_dump(doc)
    assert "PRIVATE KEY" not in rest
    # Nothing credential-shaped is left for fatctl's own redactor to find.
    assert redact(rest) == rest
    for item in render_files(spec).values():
        assert "PRIVATE KEY" not in item.content
        assert redact(item.content) == item.content, item.path


def test_no_secret_assignments_anywhere(host_key: HostKeyPair) -> None:
    text = render_user_data(make_spec(VARIANTS[0], host_keys=(host_key,)))
    # The names of the delivered secrets may be mentioned, never given a value.
    for name in (
        "OPENCLAW_GATEWAY_TOKEN",
        "RCLONE_CONFIG_R2_ACCESS_KEY_ID",
        "RCLONE_CONFIG_R2_SECRET_ACCESS_KEY",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
    ):
        assert not re.search(rf"{name}\s*=", text), name
    assert "access_key_id" not in text and "secret_access_key" not in text
