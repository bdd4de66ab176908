"""Public key parsing and fingerprints, OpenSSH config output, and the output line splitter."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from fatctl.remote.openssh_config import config_stanza, known_hosts_lines, merge_known_hosts
from fatctl.remote.runner_io import LineSplitter
from fatctl.remote.target import Target, fingerprint, parse_public_key


def test_fingerprint_matches_ssh_keygen(tmp_path: Path):
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = (tmp_path / "k.pub").read_text()
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True
    )
    assert fingerprint(line) == out.stdout.split()[1]
    assert parse_public_key(line).line() == " ".join(line.split()[:2])


def test_parse_rejects_spliced_or_garbage_keys():
    body = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00" * 36).decode()
    assert parse_public_key(f"ssh-ed25519 {body}").key_type == "ssh-ed25519"
    for bad in (f"ssh-rsa {body}", "ssh-ed25519", "ssh-ed25519 not*base64", ""):
        with pytest.raises(ValueError):
            parse_public_key(bad)


def test_config_stanza_and_known_hosts():
    jump = Target("bastion", "10.0.0.1", 22, "ops", ("ssh-ed25519 AAAAjump",), "/k")
    t = Target("alpha", "192.0.2.7", 2222, "fatops", ("ssh-ed25519 AAAAx c",), "/k", jump=jump)
    text = config_stanza(t, "/d/known_hosts")
    assert "Host alpha\n    HostName 192.0.2.7\n    Port 2222\n    User fatops\n" in text
    assert "HostKeyAlias fatctl-alpha" in text and "StrictHostKeyChecking yes" in text
    assert "UserKnownHostsFile /d/known_hosts" in text and "ProxyJump bastion" in text
    assert text.index("Host bastion") < text.index("Host alpha")
    assert known_hosts_lines(t) == ["fatctl-alpha ssh-ed25519 AAAAx"]
    merged = merge_known_hosts("other ssh-ed25519 AAAAo\nfatctl-alpha ssh-ed25519 OLD\n", [t])
    assert merged == "other ssh-ed25519 AAAAo\nfatctl-alpha ssh-ed25519 AAAAx\n"


def test_line_splitter_lines_and_raw():
    got: list[tuple[str, str]] = []
    s = LineSplitter("out", lambda st, line: got.append((st, line)))
    s.feed(b"a\nb")
    s.feed(b"c\nlast")
    assert s.finish() == "a\nbc\nlast"
    assert got == [("out", "a"), ("out", "bc"), ("out", "last")]
    raw: list[str] = []
    r = LineSplitter("err", lambda st, text: raw.append(text), raw=True)
    euro = "€".encode()
    r.feed(euro[:1])
    r.feed(euro[1:] + b"\n")
    assert "".join(raw) == "€\n" and r.finish() == "€\n"
