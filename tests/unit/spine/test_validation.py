"""Validators: precise messages on bad input, and no input makes them crash (hypothesis)."""

from __future__ import annotations

import base64
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fatctl import validation
from fatctl.errors import BadInput
from fatctl.names import friendly_name

VALIDATORS = [
    validation.agent_name, validation.email, validation.domain, validation.server_type,
    validation.location, validation.image, validation.version, validation.ssh_public_key,
    validation.label_selector,
]  # fmt: skip


@pytest.mark.parametrize("fn", VALIDATORS, ids=lambda f: f.__name__)
@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=300), st.binary(max_size=50).map(lambda b: b.decode("latin-1"))
    )
)
def test_no_input_crashes(fn, value: str) -> None:
    try:
        fn(value)
    except BadInput as exc:
        assert "\n" not in exc.one_line()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=3, max_size=40))
def test_accepted_names_are_dns_labels(name: str) -> None:
    try:
        assert validation.agent_name(name) == name
    except BadInput:
        return
    assert name[0].isalpha() and name[-1] != "-" and "--" not in name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ab", "3 to 40"),
        ("a" * 41, "3 to 40"),
        ("Bob", "lowercase"),
        ("1abc", "start with a letter"),
        ("abc-", "not end with"),
        ("a_bc", "only a-z"),
        ("www", "reserved"),
        ("admin", "reserved"),
        ("ab--c", "'--'"),
    ],
)
def test_bad_agent_names(name: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        validation.agent_name(name)


def test_good_agent_names() -> None:
    for name in ("swiftpebble", "abc", "calm-flint-2"):
        assert validation.agent_name(name) == name


@pytest.mark.parametrize("bad", ["", "a@", "@b.com", "a@b", "a b@c.com", "a..b@c.com", "x@-a.com"])
def test_bad_emails(bad: str) -> None:
    with pytest.raises(BadInput):
        validation.email(bad)


def test_email_lowercases_domain() -> None:
    assert validation.email("Ann@Example.COM") == "Ann@example.com"


def _keygen(tmp_path, kind: str, bits: int | None = None) -> str:
    path = tmp_path / f"k_{kind}_{bits}"
    args = ["ssh-keygen", "-q", "-N", "", "-t", kind, "-f", str(path)]
    if bits:
        args += ["-b", str(bits)]
    subprocess.run(args, check=True)
    return (path.parent / (path.name + ".pub")).read_text()


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", None), ("ecdsa", 256), ("rsa", 3072)])
def test_real_keys_accepted_with_openssh_fingerprint(tmp_path, kind: str, bits: int | None) -> None:
    pub = _keygen(tmp_path, kind, bits)
    line, fp = validation.ssh_public_key(pub)
    expected = subprocess.run(
        ["ssh-keygen", "-lf", "-"], input=pub, capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert fp == expected
    assert line.startswith(pub.split()[0])


def test_short_rsa_rejected(tmp_path) -> None:
    pub = _keygen(tmp_path, "rsa", 2048)
    with pytest.raises(BadInput, match="2048 bits"):
        validation.ssh_public_key(pub)


def test_private_key_pasted_by_mistake(tmp_path) -> None:
    _keygen(tmp_path, "ed25519")
    private = (tmp_path / "k_ed25519_None").read_text()
    with pytest.raises(BadInput, match="PRIVATE key") as info:
        validation.ssh_public_key(private)
    assert "BEGIN" not in str(info.value)  # the key material is not echoed back


def test_dsa_and_garbage_rejected() -> None:
    blob = struct.pack(">I", 7) + b"ssh-dss" + b"\0" * 40
    with pytest.raises(BadInput, match="DSA"):
        validation.ssh_public_key("ssh-dss " + base64.b64encode(blob).decode())
    with pytest.raises(BadInput, match="base64"):
        validation.ssh_public_key("ssh-ed25519 !!!notbase64")
    with pytest.raises(BadInput, match="not an OpenSSH public key"):
        validation.ssh_public_key("hello world")
    mismatched = base64.b64encode(struct.pack(">I", 7) + b"ssh-rsa").decode()
    with pytest.raises(BadInput, match="does not match"):
        validation.ssh_public_key("ssh-ed25519 " + mismatched)


@pytest.mark.parametrize("bad", ["cx99", "", "CX23"])
def test_unknown_server_type(bad: str) -> None:
    with pytest.raises(BadInput, match="unknown server type"):
        validation.server_type(bad)


@pytest.mark.parametrize("bad", ["1.2", "v1.2.3", "latest", "1.2.3.4"])
def test_bad_versions(bad: str) -> None:
    with pytest.raises(BadInput):
        validation.version(bad)


def test_friendly_names_unique_and_valid() -> None:
    seen: set[str] = set()
    for _ in range(500):
        name = friendly_name(seen.__contains__)
        assert name not in seen
        assert validation.agent_name(name) == name
        seen.add(name)


def test_friendly_name_falls_back_to_suffix_when_crowded() -> None:
    name = friendly_name(lambda n: not any(ch.isdigit() for ch in n))
    assert any(ch.isdigit() for ch in name)
    validation.agent_name(name)
