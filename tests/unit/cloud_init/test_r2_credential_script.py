"""The box's credential script, run here: rclone's AWS SDK runs it (the `credential_process` of
the AWS config) and `creds rotate` runs it to check a delivered file.

What it must print is the SDKs' `credential_process` contract (aws-config's CredentialProcess
Provider docs): "The Version must be set to 1. AccessKeyId and SecretAccessKey are always
required. SessionToken must be set if a session token is associated with the AccessKeyId. The
Expiration is optional, and must be given in the RFC 3339 date time format". aws-sdk-go v1 (in
rclone 1.60), processcreds/provider.go, is what makes a short Expiration re-read the file:
`p.staticCreds = resp.Expiration == nil; if resp.Expiration != nil { p.SetExpiration(
*resp.Expiration, p.ExpiryWindow) }`, and `IsExpired` "returns true if the credentials
retrieved are expired". Its parse error quotes the whole output (`"%s: %s",
errMsgProcessProviderParse, string(out)`), keys included, into rclone's log: so the script
prints nothing at all unless it can print a well-formed document.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud_init import layout as L
from cloud_init.files import render_files
from fatctl.remote.commands.storage import take_r2_credentials
from tests.unit.cloud_init.test_render import STOCK
from tests.unit.cloud_init.variants import make_spec

SECRET = "x" * 39 + "Y"


def _script(tmp_path: Path, env: str) -> Path:
    (tmp_path / "r2.env").write_text(env)
    text = render_files(make_spec(STOCK))[L.R2_CREDENTIALS_SCRIPT].content
    script = tmp_path / "fat-r2-credentials"
    script.write_text(text.replace(L.R2_ENV, str(tmp_path / "r2.env")))
    return script


def _run(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=30)


def test_prints_the_delivered_keys_with_a_short_expiry(tmp_path: Path) -> None:
    env = ("RCLONE_CONFIG_R2_ACCESS_KEY_ID=ak1\n"
           f"RCLONE_CONFIG_R2_SECRET_ACCESS_KEY={SECRET}\n"
           "RCLONE_CONFIG_R2_SESSION_TOKEN=dG9r+/a.b_c-d==\n")  # fmt: skip
    before = datetime.now(UTC).replace(microsecond=0)
    done = _run(_script(tmp_path, env))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    expires = datetime.fromisoformat(doc.pop("Expiration").replace("Z", "+00:00"))
    assert doc == {"Version": 1, "AccessKeyId": "ak1", "SecretAccessKey": SECRET,
                   "SessionToken": "dG9r+/a.b_c-d=="}  # fmt: skip
    # Re-read soon (so a rotation lands), never already expired.
    assert before < expires <= datetime.now(UTC) + timedelta(seconds=L.R2_CREDENTIALS_TTL_S)


def test_a_key_pair_without_a_session_token_is_printed_without_one(tmp_path: Path) -> None:
    """A static R2 key pair has no session token; the first boot died on `t: parameter not
    set` (`set -u`) and the mount never came up."""
    env = f"RCLONE_CONFIG_R2_ACCESS_KEY_ID=ak1\nRCLONE_CONFIG_R2_SECRET_ACCESS_KEY={SECRET}\n"
    done = _run(_script(tmp_path, env))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["AccessKeyId"] == "ak1" and doc["SecretAccessKey"] == SECRET
    assert "SessionToken" not in doc


def test_a_single_trailing_padding_character_is_kept(tmp_path: Path) -> None:
    """`IFS='=' read k v` gave `dG9rZW4` for `...TOKEN=dG9rZW4=`: the mount then signed with a
    wrong token while `creds rotate`'s check (the output parses) said rotated."""
    env = (
        "RCLONE_CONFIG_R2_ACCESS_KEY_ID=ak1\n"
        f"RCLONE_CONFIG_R2_SECRET_ACCESS_KEY={SECRET}=\n"
        "RCLONE_CONFIG_R2_SESSION_TOKEN=dG9rZW4="
    )  # fmt: skip  (and no final newline)
    done = _run(_script(tmp_path, env))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["SecretAccessKey"] == SECRET + "=" and doc["SessionToken"] == "dG9rZW4="


def test_refuses_a_value_that_could_break_the_json_without_echoing_it(tmp_path: Path) -> None:
    env = ("RCLONE_CONFIG_R2_ACCESS_KEY_ID=ak1\n"
           f'RCLONE_CONFIG_R2_SECRET_ACCESS_KEY={SECRET}","Version":2\n'
           "RCLONE_CONFIG_R2_SESSION_TOKEN=t\n")  # fmt: skip
    done = _run(_script(tmp_path, env))
    assert done.returncode != 0 and done.stdout == ""
    assert SECRET not in done.stderr and "RCLONE_CONFIG_R2_SECRET_ACCESS_KEY" in done.stderr


def test_a_missing_key_fails(tmp_path: Path) -> None:
    done = _run(_script(tmp_path, "RCLONE_CONFIG_R2_ACCESS_KEY_ID=ak1\n"))
    assert done.returncode != 0 and done.stdout == ""


def test_rotation_checks_the_file_and_restarts_nothing_on_a_current_box() -> None:
    """`creds rotate` used to run `systemctl restart rclone-data.service`, which restarted the
    gateway with it (`Requires=`). Now it runs the credential script, output discarded; only a
    box without that script (files older than this change) still gets the restart."""
    command = take_r2_credentials()
    current, _, old_box = command.partition("; else ")
    assert current.startswith(f"if [ -x {L.R2_CREDENTIALS_SCRIPT} ]; then ")
    assert current.endswith(f"{L.R2_CREDENTIALS_SCRIPT} >/dev/null")
    assert "systemctl" not in current and f"restart --no-pager {L.DATA_UNIT}" in old_box


def test_converge_restarts_the_mount_for_its_aws_config_but_not_for_the_script() -> None:
    """The SDK reads the AWS config once, when rclone starts; the script it runs every time the
    keys 'expire', so a new script needs no restart (and must not cost the gateway one)."""
    from fatctl.remote.commands.converge import actions_for

    assert actions_for([L.R2_AWS_CONFIG]).restart == (L.DATA_UNIT, L.GATEWAY_UNIT)
    assert actions_for([L.R2_CREDENTIALS_SCRIPT]).restart == ()


def test_prints_nothing_when_it_cannot_say_when_the_keys_expire(tmp_path: Path) -> None:
    """A document with an empty Expiration fails the SDK's parse, whose error quotes the output
    (the secret key) into rclone's log: with `date` failing, stdout must stay empty."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "date").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "date").chmod(0o755)
    env = ("RCLONE_CONFIG_R2_ACCESS_KEY_ID=ak1\n"
           f"RCLONE_CONFIG_R2_SECRET_ACCESS_KEY={SECRET}\n"
           "RCLONE_CONFIG_R2_SESSION_TOKEN=t\n")  # fmt: skip
    path = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(_script(tmp_path, env))], capture_output=True, text=True,
                          timeout=30, env=path)  # fmt: skip
    assert done.returncode != 0 and SECRET not in done.stdout + done.stderr
