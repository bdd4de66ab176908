"""Input edges of every validator: a trailing newline never gets through (a `$` anchor with
`match` used to let `alice\\n` pass as a second `alice`), and key material is exactly one
well-formed key with a printable comment (a second line or an ANSI escape used to ride along
in the comment and reach the operator's terminal through `keys list`)."""

from __future__ import annotations

import base64
import struct
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from cloud_init import inputs as cloud_inputs
from fatctl import serving, validation
from fatctl.errors import BadInput
from fatctl.remote.commands import authorized_keys, upgrade
from fatctl.sandbox.hetzner import selectors
from fatctl.sandbox.hetzner import validate as hetzner
from fatctl.sandbox.hetzner.errors import ApiError

GOOD: list[tuple[str, Callable[[str], Any], str]] = [
    ("agent name", validation.agent_name, "alice"),
    ("email", validation.email, "a@example.com"),
    ("domain", validation.domain, "agents.example.com"),
    ("version", validation.version, "2026.9.6"),
    ("label", validation.label_selector, "env=prod"),
    ("model", serving.model_choice, "anthropic/claude-sonnet-4-5"),
    ("telegram sender", lambda v: serving.sender(v, "telegram"), "123456789"),
    ("phone sender", lambda v: serving.sender(v, "phone"), "+4915112345678"),
    ("upgrade version", upgrade.check_version, "2026.9.6"),
    ("box user", authorized_keys.list_authorized_keys, "customer"),
    ("render version", lambda v: cloud_inputs.check_version("runtime version", v), "1.2.3"),
    ("hetzner server name", hetzner.hostname, "alice"),
    ("hetzner label", lambda v: hetzner.labels({"labels": {"agent": v}}), "alice"),
    ("hetzner label key", lambda v: hetzner.labels({"labels": {v: "x"}}), "agent"),
]


@pytest.mark.parametrize(("what", "check", "value"), GOOD, ids=[g[0] for g in GOOD])
def test_valid_values_pass(what: str, check: Callable[[str], Any], value: str) -> None:
    check(value)


@pytest.mark.parametrize(("what", "check", "value"), GOOD, ids=[g[0] for g in GOOD])
@pytest.mark.parametrize("tail", ["\n", "\r\n", "\nbob", "\x00"])
def test_a_second_line_never_passes(
    what: str, check: Callable[[str], Any], value: str, tail: str
) -> None:
    """Refused, or (for validators that normalise surrounding space) returned without it."""
    try:
        result = check(value + tail)
    except (BadInput, ValueError, ApiError):
        return
    shown = repr(result)
    assert "\\n" not in shown and "\\r" not in shown and "bob" not in shown, (what, result)


def test_selector_terms_match_whole() -> None:
    assert selectors.matches("agent=alice", {"agent": "alice"})
    with pytest.raises(ValueError):
        selectors.parse("agent=alice\nx")


def _wire(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


def _keygen(tmp_path, kind: str) -> str:
    path = tmp_path / kind
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", kind, "-f", str(path)], check=True)
    return (tmp_path / f"{kind}.pub").read_text().strip()


POINT = b"\x04" + b"\x11" * 64


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ecdsa-sha2-nistp256 " + _wire(b"ecdsa-sha2-nistp256"), "curve"),
        ("ecdsa-sha2-nistp256 " + _wire(b"ecdsa-sha2-nistp256", b"nistp256", b""), "point"),
        ("ecdsa-sha2-nistp256 " + _wire(b"ecdsa-sha2-nistp256", b"nistp384", POINT), "curve"),
        ("ecdsa-sha2-nistp256 " + _wire(b"ecdsa-sha2-nistp256", b"nistp256", POINT, b"x"),
         "curve"),
        ("ssh-ed25519 " + _wire(b"ssh-ed25519", b"k" * 32, b"extra"), "length"),
        ("sk-ssh-ed25519@openssh.com " + _wire(b"sk-ssh-ed25519@openssh.com", b"k" * 32),
         "application"),
        ("sk-ecdsa-sha2-nistp256@openssh.com "
         + _wire(b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", POINT, b""), "application"),
    ],
)  # fmt: skip
def test_malformed_key_bodies_refused(line: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        validation.ssh_public_key(line)


def test_security_keys_accepted() -> None:
    ed = "sk-ssh-ed25519@openssh.com " + _wire(b"sk-ssh-ed25519@openssh.com", b"k" * 32, b"ssh:")
    ec = "sk-ecdsa-sha2-nistp256@openssh.com " + _wire(
        b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", POINT, b"ssh:"
    )
    assert validation.ssh_public_key(ed)[1].startswith("SHA256:")
    assert validation.ssh_public_key(ec)[1].startswith("SHA256:")


@pytest.mark.parametrize(
    "tail",
    [
        "\nssh-ed25519 AAAA second",  # a second key folded into the comment
        "\r\nssh-rsa AAAA second",
        " me\rforged",  # CR rewrites the line on a terminal
        " \x1b[2J\x1b[31mred",  # ANSI: clears the operator's screen
        " ring\x07",  # BEL
        " \u202eevil",  # right-to-left override: shows another comment
        " nul\x00",
    ],
)
def test_one_printable_line_only(tmp_path, tail: str) -> None:
    key = _keygen(tmp_path, "ed25519")
    validation.ssh_public_key(key + " plain comment")
    with pytest.raises(BadInput):
        validation.ssh_public_key(key + tail)


def test_oversized_key_refused(tmp_path) -> None:
    key = _keygen(tmp_path, "ed25519")
    with pytest.raises(BadInput, match="larger than"):
        validation.ssh_public_key(key + " " + "c" * validation.MAX_PUBLIC_KEY_BYTES)


@pytest.mark.parametrize(
    "detail",
    [
        {"command": "x" * 5000, "exit": 3},
        {"argv": ["y" * 300] * 20},
        {str(i): "z" * 40 for i in range(300)},
    ],
)
def test_long_audit_details_stay_parseable_json(detail: dict[str, Any]) -> None:
    """The audit detail column is bounded; cutting the JSON text used to leave it unparseable
    (and `fatctl audit --json` crashing)."""
    import json

    from fatctl.state.repo import AUDIT_DETAIL_MAX, bounded_detail

    text = bounded_detail(detail)
    assert len(text) <= AUDIT_DETAIL_MAX
    parsed = json.loads(text)
    assert parsed.get("exit", 3) == 3
