"""age keys made in Python (`fatctl.backup_keys`) are the ones the real `age` tools accept.

The real tools are the reference: `age-keygen -y` ("Convert an identity file to a recipients
file", age-keygen(1)) must print the recipient fatctl derived, and a file encrypted with
`age -e -r RECIPIENT` must decrypt with `age -d -i IDENTITY_FILE` (age(1)).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fatctl.backup_keys import (
    IDENTITY_HRP,
    bech32_decode,
    bech32_encode,
    generate,
    is_recipient,
    recipient_of,
)
from fatctl.errors import BadInput
from fatctl.sensitive import Sensitive

needs_age = pytest.mark.skipif(not shutil.which("age-keygen"), reason="age is not installed")


def _keygen_y(identity: Sensitive) -> str:
    run = subprocess.run(["age-keygen", "-y"], input=identity.reveal() + "\n",
                         capture_output=True, text=True, check=True)  # fmt: skip
    return run.stdout.strip()


@needs_age
def test_age_keygen_derives_the_same_recipient() -> None:
    for _ in range(5):
        identity, recipient = generate()
        assert identity.reveal().startswith("AGE-SECRET-KEY-1")
        assert _keygen_y(identity) == recipient
        assert recipient_of(identity) == recipient


@needs_age
def test_recipient_of_an_identity_age_keygen_made(tmp_path: Path) -> None:
    key_file = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key_file)], capture_output=True, check=True)
    line = next(x for x in key_file.read_text().splitlines() if x.startswith("AGE-SECRET"))
    assert recipient_of(Sensitive(line)) == _keygen_y(Sensitive(line))


@needs_age
def test_round_trip_through_the_real_age(tmp_path: Path) -> None:
    identity, recipient = generate()
    identity_file = tmp_path / "identity"
    identity_file.write_text(identity.reveal() + "\n")
    identity_file.chmod(0o600)
    sealed = subprocess.run(["age", "-e", "-r", recipient], input=b"state of the agent",
                            capture_output=True, check=True).stdout  # fmt: skip
    assert sealed.startswith(b"age-encryption.org/v1")
    opened = subprocess.run(["age", "-d", "-i", str(identity_file)], input=sealed,
                            capture_output=True, check=True).stdout  # fmt: skip
    assert opened == b"state of the agent"


def test_bip173_vector_and_rejections() -> None:
    """BIP-173's valid test vector "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw" (payload:
    the charset's 32 words) and a flipped checksum character, mixed case, wrong prefix."""
    payload = bech32_decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "abcdef")
    assert payload is not None
    assert bech32_encode("abcdef", payload) == "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"
    assert bech32_decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxq", "abcdef") is None
    _, recipient = generate()
    assert is_recipient(recipient)
    assert not is_recipient(recipient[:-1] + ("q" if recipient[-1] != "q" else "p"))
    assert not is_recipient(recipient.upper())
    assert not is_recipient("age1")
    assert bech32_decode(recipient, IDENTITY_HRP) is None


def test_a_bad_identity_is_refused_without_echoing_it() -> None:
    with pytest.raises(BadInput) as info:
        recipient_of(Sensitive("AGE-SECRET-KEY-1NOTAKEYATALL"))
    assert "NOTAKEY" not in info.value.one_line()
