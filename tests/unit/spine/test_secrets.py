"""Envelope encryption, the Sensitive wrapper, redaction, and configuration loading."""

from __future__ import annotations

import pickle

import pytest

from fatctl.config import load_settings
from fatctl.errors import ConfigError, SecretError
from fatctl.secrets import generate_master_key, keyring_from, open_sealed, rewrap, seal
from fatctl.sensitive import Sensitive, redact


def ring(key: str, previous: str | None = None):  # type: ignore[no-untyped-def]
    return keyring_from(Sensitive(key), Sensitive(previous) if previous else None)


def test_roundtrip_and_fresh_nonces() -> None:
    r = ring(generate_master_key())
    a = seal(Sensitive("s3cret-value"), r, "agent:1/x")
    b = seal(Sensitive("s3cret-value"), r, "agent:1/x")
    assert a.ciphertext != b.ciphertext and a.wrapped_key != b.wrapped_key
    assert b"s3cret-value" not in a.ciphertext
    assert open_sealed(a, r, "agent:1/x").reveal() == "s3cret-value"


def test_wrong_master_key_and_swapped_context_fail_cleanly() -> None:
    key = generate_master_key()
    sealed = seal(Sensitive("v"), ring(key), "agent:1/x")
    other = ring(generate_master_key())
    with pytest.raises(SecretError, match="no master key with id"):
        open_sealed(sealed, other, "agent:1/x")
    with pytest.raises(SecretError, match="cannot decrypt secret agent:2/x"):
        open_sealed(sealed, ring(key), "agent:2/x")
    tampered = type(sealed)(sealed.key_id, sealed.wrapped_key, sealed.ciphertext[:-1] + b"\0")
    with pytest.raises(SecretError, match="altered"):
        open_sealed(tampered, ring(key), "agent:1/x")


def test_rotation_rewraps_key_only() -> None:
    old, new = generate_master_key(), generate_master_key()
    sealed = seal(Sensitive("v"), ring(old), "c")
    both = ring(new, old)
    moved = rewrap(sealed, both, "c")
    assert moved.key_id == both.current.key_id != sealed.key_id
    assert moved.ciphertext == sealed.ciphertext
    assert open_sealed(moved, ring(new), "c").reveal() == "v"


@pytest.mark.parametrize("bad", ["not base64!!", "c2hvcnQ="])
def test_bad_master_key_named_not_shown(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        ring(bad)
    assert "FATCTL_MASTER_KEY" in str(info.value) and bad not in str(info.value)


def test_sensitive_never_shows() -> None:
    s = Sensitive("topsecret")
    for text in (str(s), repr(s), f"{s}", f"{s!r}", str([s]), str({"k": s})):
        assert "topsecret" not in text
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_redact_known_values_and_shapes() -> None:
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----"
    text = f"token=abc123 then hunter22 and {pem}"
    out = redact(text, [Sensitive("hunter22")])
    assert "abc123" not in out and "hunter22" not in out and "BEGIN" not in out


def test_settings_env_over_toml(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "fatctl.toml"
    cfg.write_text(
        'domain = "from.toml"\n[hcloud]\ntoken = "tok-from-toml"\n[defaults]\nlocation = "hel1"\n'
    )
    env = {"FATCTL_CONFIG": str(cfg), "FATCTL_DOMAIN": "from.env", "FATCTL_DATA_DIR": str(tmp_path)}
    s = load_settings(env)
    assert s.domain == "from.env" and s.location == "hel1"
    assert isinstance(s.hcloud_token, Sensitive) and s.hcloud_token.reveal() == "tok-from-toml"
    assert "tok-from-toml" not in str(s.public_view())
    with pytest.raises(
        ConfigError, match="missing setting cloudflare_api_token: set CLOUDFLARE_API_TOKEN"
    ):
        s.require("cloudflare_api_token")


def test_broken_toml_is_one_line(tmp_path) -> None:
    cfg = tmp_path / "fatctl.toml"
    cfg.write_text("domain = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"FATCTL_CONFIG": str(cfg)})


def test_sandbox_and_box_layout_are_settings(tmp_path) -> None:
    """FATCTL_SANDBOX and FATCTL_BOX_* work as they did, and `[box]`/`sandbox` in the toml too
    (a TOML boolean reads as the environment's 1/0); the layouts are built from the settings."""
    from fatctl.cli.layouts import box_layout, files_layout
    from fatctl.remote.commands.converge import ConvergeLayout
    from fatctl.remote.commands.upgrade import BoxLayout

    assert load_settings({"FATCTL_DATA_DIR": str(tmp_path)}).in_sandbox is False
    cfg = tmp_path / "fatctl.toml"
    cfg.write_text('sandbox = true\n[box]\nsudo = false\nroot = "/toml"\nlock = "/l"\n')
    env = {
        "FATCTL_CONFIG": str(cfg),
        "FATCTL_DATA_DIR": str(tmp_path),
        "FATCTL_BOX_ROOT": "/env",
        "FATCTL_BOX_FS_ROOT": "/fs",
        "FATCTL_BOX_OWNERS": "yes",
    }
    s = load_settings(env)
    assert s.in_sandbox and s.public_view()["box_root"] == "/env"
    assert box_layout(s) == BoxLayout(root="/env", lock="/l", sudo=False)
    # "yes" is no 0/1 switch: ignored, as it always was.
    assert files_layout(s) == ConvergeLayout(root="/fs", sudo=False)
    assert load_settings({**env, "FATCTL_SANDBOX": "0"}).in_sandbox is False
    assert box_layout(load_settings({"FATCTL_DATA_DIR": str(tmp_path)})) == BoxLayout()
