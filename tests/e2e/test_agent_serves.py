"""The customer's side, end to end on real nspawn boxes with the real OpenClaw gateway: a BYOK
agent whose model is a custom OpenAI-compatible provider (the sandbox's model stand-in) answers
its allowed Telegram sender with that model, paid with the customer's key; a stranger's message
reaches no model and gets no reply; a managed agent on the same fleet pays with the platform's
key; rotating the customer's key is one command and the next message uses the new key. Then a
leak scan: none of the keys or tokens is in fatctl's output, its database, the sandbox's logs,
or the boxes' journals and cloud-init logs. Everything goes through the `fatctl` CLI, as an
operator (or the signup platform) would drive it.

Then R2 credentials rotate under the running gateway (same MainPID and active-since instant),
the old key is ended at S3, and the agent's next file still lands in its prefix. Then a state
backup (encrypted in R2, verified) and a restore that brings the conversation back to it.

Prints: box start to ready (provision, which ends at OpenClaw's /readyz), message in to reply
out, and the same after the key rotation; backup time and size, restore to healthy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fatctl.sandbox.world import client as world
from fatctl.sandbox.world import fingerprint
from fatctl.sandbox.world.model_api import reply_text
from tests.e2e.customer_shell import customer_attacks
from tests.fixtures.cli import fatctl_env, run_fatctl

pytestmark = [pytest.mark.root, pytest.mark.slow]

OWNER_SENDER, STRANGER, MANAGED_SENDER = 4242, 999_001, 5151
REPLY_WAIT_S = 120.0
READ_LOGS = (
    "sudo journalctl --no-pager -o cat; "
    "sudo cat /var/log/cloud-init.log /var/log/cloud-init-output.log"
)


class Plane:
    """The operator's shell: one environment, every command's output kept for the leak scan."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.outputs: list[str] = []

    def run(self, *args: str, stdin: str | None = None, check: int | None = 0) -> str:
        proc = run_fatctl(*args, env=self.env, input=stdin, timeout=900, check=check)
        self.outputs += [proc.stdout, proc.stderr]
        return proc.stdout


def _plane(sandbox: dict[str, Any], tmp_path: Path) -> Plane:
    from fatctl.secrets import generate_master_key

    env = fatctl_env(sandbox["env"], FATCTL_DATA_DIR=str(tmp_path / "data"),
                     FATCTL_MASTER_KEY=generate_master_key(), FATCTL_ACTOR="e2e")  # fmt: skip
    plane = Plane(env)
    plane.run("db", "upgrade")
    pub = sandbox["env"]["FATCTL_OPERATOR_KEY_FILE"] + ".pub"
    plane.run("keys", "add", "--operator", "--file", pub, "--label", "op")
    return plane


def _round_trip(admin: str, bot_id: int, sender: int, text: str) -> tuple[dict[str, Any], float]:
    """Send `text` as `sender`; the reply the bot sent back to that chat, and how long it took."""
    sent_at, started = time.time(), time.monotonic()
    world.send_as_user(admin, bot_id, sender, text)

    def reply(item: dict[str, Any]) -> bool:
        return item["bot"] == bot_id and item["chat_id"] == sender and item["at"] >= sent_at

    found = world.wait_record(admin, "sent", reply, REPLY_WAIT_S)
    assert found is not None, f"no reply to {sender} from bot {bot_id} within {REPLY_WAIT_S}s"
    return found, time.monotonic() - started


def _model_call(admin: str, text: str, reply: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model request that carried the customer's `text` (the gateway wraps it in context).
    `reply`, the bot's answer, is shown when the model never saw the text: a gateway that
    answered without asking the model says why in it."""
    seen = world.records(admin, "model")
    calls = [c for c in seen if text in c["user_text"]]
    assert calls, (f"the model never saw {text!r} ({len(seen)} model calls; the bot answered "
                   f"{str((reply or {}).get('text', ''))[:300]!r})")  # fmt: skip
    return calls[-1]


def test_agent_answers_its_customer_and_nobody_else(
    sandbox: dict[str, Any], tmp_path: Path, figure: Callable[..., None]
) -> None:
    plane = _plane(sandbox, tmp_path)
    admin = world.admin_url(sandbox["state"])
    model_url = sandbox["env"]["FATCTL_MANAGED_MODEL_BASE_URL"]
    platform_key = world.issue_model_key(admin)
    byok_key, rotated_key = world.issue_model_key(admin), world.issue_model_key(admin)
    (byok_bot, byok_bot_id), (managed_bot, managed_bot_id) = (
        world.issue_bot_token(admin), world.issue_bot_token(admin))  # fmt: skip
    secrets = [platform_key, byok_key, rotated_key, byok_bot, managed_bot]

    # The platform's provider key pays for every managed agent.
    plane.run("secrets", "set", "fireworks-api-key", stdin=platform_key)

    # BYOK: the customer's own model and key; refused before any cloud resource without the key.
    plane.run("agents", "create", "cust-byok", "--owner", "byok@example.com", "--plan", "byok",
              "--model", "custom/stand-in", "--base-url", model_url)  # fmt: skip
    refused = run_fatctl("provision", "cust-byok", "--owner", "byok@example.com",
                         env=plane.env, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "fatctl model key cust-byok" in refused.stderr
    assert not _servers(sandbox), "a refused provision must create nothing at Hetzner"
    plane.run("model", "key", "cust-byok", stdin=byok_key + "\n")
    plane.run("channels", "add", "cust-byok", "telegram", stdin=byok_bot + "\n")
    plane.run("senders", "add", "cust-byok", str(OWNER_SENDER))
    started = time.monotonic()
    plane.run("provision", "cust-byok", "--owner", "byok@example.com")
    figure("BYOK box: create to /readyz ready", time.monotonic() - started, "s")

    # Managed, on the same fleet: the plan's default model, the platform's key.
    plane.run("agents", "create", "cust-managed", "--owner", "managed@example.com")
    plane.run("channels", "add", "cust-managed", "telegram", stdin=managed_bot + "\n")
    plane.run("senders", "add", "cust-managed", str(MANAGED_SENDER))
    plane.run("provision", "cust-managed", "--owner", "managed@example.com")

    # The allowed sender is answered by the model the plan pays for, with the customer's key.
    reply, took = _round_trip(admin, byok_bot_id, OWNER_SENDER, "hello from the owner")
    figure("BYOK message in to reply out", took, "s")
    call = _model_call(admin, "hello from the owner")
    assert call["key"] == fingerprint(byok_key) and call["model"] == "stand-in"
    assert reply["text"] == call["reply"] == reply_text("stand-in", call["user_text"])

    status = json.loads(plane.run("status", "cust-byok", "--ssh", "--json"))[0]
    assert status["health"].startswith("healthy") and status["channels"] == "telegram ready"

    # A stranger's message reaches no model and gets no reply. The gateway did take the update
    # (it asked for the next offset), so the silence is its allowlist, not a lost message.
    update_id = world.send_as_user(admin, byok_bot_id, STRANGER, "let me in")
    polled = world.wait_record(admin, "telegram", lambda r: r["bot"] == byok_bot_id
                               and int(r["params"].get("offset") or 0) > update_id, 60)  # fmt: skip
    assert polled is not None, "the gateway never confirmed the stranger's update"
    time.sleep(10)
    seen = [c for c in world.records(admin, "model")
            if "let me in" in c["user_text"] or str(STRANGER) in c["user_text"]]  # fmt: skip
    assert not seen, "a stranger's message reached the model"
    assert not [s for s in world.records(admin, "sent") if s["chat_id"] == STRANGER]

    # The managed agent pays with the platform key, never the customer's.
    answer, _ = _round_trip(admin, managed_bot_id, MANAGED_SENDER, "hello from managed")
    managed_call = _model_call(admin, "hello from managed", answer)
    assert managed_call["key"] == fingerprint(platform_key)
    assert managed_call["model"] == "accounts/fireworks/models/minimax-m2p1"

    # Rotating the customer's key is one command; the next message uses the new key.
    plane.run("model", "key", "cust-byok", stdin=rotated_key + "\n")
    _, took = _round_trip(admin, byok_bot_id, OWNER_SENDER, "after the rotation")
    figure("BYOK message in to reply out, after key rotation", took, "s")
    assert _model_call(admin, "after the rotation")["key"] == fingerprint(rotated_key)

    # WhatsApp through the plugin the box carries (no download at start: the boxes have no
    # internet): the gateway loads it, and until the QR login it reports not-linked, which is
    # not a fault; Telegram keeps answering.
    plane.run("channels", "add", "cust-byok", "whatsapp")
    status = json.loads(plane.run("status", "cust-byok", "--ssh", "--json"))[0]
    assert status["health"].startswith("healthy"), status
    assert "whatsapp not-linked" in status["channels"] and "telegram ready" in status["channels"]
    _round_trip(admin, byok_bot_id, OWNER_SENDER, "after whatsapp")

    # R2 credentials rotate under the running gateway: same process, same chat sockets.
    _rotate_storage_under_gateway(plane, sandbox, admin, byok_bot_id)

    _backup_and_restore(plane, sandbox, admin, byok_bot_id, figure)

    _platform_skills(plane, admin, byok_bot_id)
    _box_trust(plane)
    customer_attacks(plane.run, "cust-byok", tmp_path)
    _leak_scan(plane, sandbox, tmp_path, secrets)


PAGE = (
    "<html><head><title>t</title></head><body><h1>FAT skills</h1>"
    "<script>document.title = 'evaluated ' + (6 * 7);</script></body></html>"
)
# Run as the agent's user, the way the agent's exec tool would run the skills' commands.
SKILL_RUN = f"""set -e
d=$(mktemp -d)
cd "$d"
cat > page.html <<'PAGE'
{PAGE}
PAGE
fat-browser screenshot "file://$d/page.html" shot.png 640x480
fat-browser pdf "file://$d/page.html" page.pdf
echo "png=$(head -c 4 shot.png | tail -c 3) pdf=$(head -c 5 page.pdf)"
fat-browser dom "file://$d/page.html" | grep -o '<title>[^<]*</title>'
fat-browser eval "file://$d/page.html" document.title
rm -rf "$d"
"""


# Runs the script named by $1 as the agent's user under the gateway unit's own sandbox (its
# User=, Protect*, Restrict*, SystemCallFilter= ... lines, read from the unit on the box), the
# way the gateway's exec tool runs a skill's command: hardening that broke Chromium shows here.
UNDER_GATEWAY = """set -eu
keys='User|Group|UMask|NoNewPrivileges|Protect|Private|Restrict|SystemCall|Lock|Capability'
keys="$keys|Ambient|IPAddress|RemoveIPC|ReadWritePaths"
props=()
while IFS= read -r line; do props+=(-p "$line"); done < <(grep -E "^($keys)=" \
  /etc/systemd/system/openclaw-gateway.service)
check=/usr/local/lib/fat-skills-check.sh
install -m 0755 "$1" "$check"
systemd-run --quiet --pipe --wait --collect "${props[@]}" /bin/bash "$check"
rm -f "$check"
"""
UNDER_GATEWAY_B64 = base64.b64encode(UNDER_GATEWAY.encode()).decode()


# On the box, as root: a stand-in for the metadata service (it serves user-data, which holds the
# SSH host private key) on its real address, then who may reach it and who may touch /data. Not
# on port 80: Caddy listens there, and a reply from Caddy's user to an address on the box itself
# would meet the same rule (the real service is off the box; the rule is by address, any port).
TRUST_RUN = """set -u
ip addr add 169.254.169.254/32 dev lo 2>/dev/null || true
mkdir -p /run/fake-metadata && echo user-data-with-host-key > /run/fake-metadata/user-data
cd /run/fake-metadata && (python3 -m http.server --bind 169.254.169.254 8169 >/dev/null 2>&1 &
  echo $! > /run/fake-metadata.pid)
sleep 1
get() { curl -s -m 3 -o /dev/null -w '%{http_code}' http://169.254.169.254:8169/user-data; }
echo "root=$(get)"
for u in nobody openclaw; do echo "$u=$(runuser -u "$u" -- bash -c "$(declare -f get); get")"; done
kill "$(cat /run/fake-metadata.pid)"
runuser -u openclaw -- test -r /data/MEMORY.md && echo "openclaw reads data"
runuser -u nobody -- cat /data/MEMORY.md >/dev/null 2>&1 || echo "nobody cannot read data"
runuser -u nobody -- touch /data/intruder 2>/dev/null || echo "nobody cannot write data"
stat -c 'data %U %a' /data/MEMORY.md
"""


def _box_trust(plane: Plane) -> None:
    """The metadata address answers root only (nftables by uid; the gateway unit denies it
    too), and the agent's data is the service user's alone."""
    script = base64.b64encode(TRUST_RUN.encode()).decode()
    out = plane.run("ssh", "cust-byok", "--", f"echo {script} | base64 -d | sudo bash")
    assert "root=200" in out and "nobody=000" in out and "openclaw=000" in out, out
    for line in ("openclaw reads data", "nobody cannot read data", "nobody cannot write data",
                 "data openclaw 600"):  # fmt: skip
        assert line in out, out


def _platform_skills(plane: Plane, admin: str, bot_id: int) -> None:
    """The platform's skills are loaded by the gateway (OpenClaw registers each skill as a bot
    command) and their commands work on the box, run as the agent's own user."""
    commands = {c["command"] for r in world.records(admin, "telegram")
                if r["bot"] == bot_id and r["method"] == "setMyCommands"
                for c in r["params"]["commands"]}  # fmt: skip
    assert {"browser", "pdf", "github_login", "agent_storage", "outbox_email"} <= commands
    script = base64.b64encode(SKILL_RUN.encode()).decode()
    under = f"echo {UNDER_GATEWAY_B64} | base64 -d | sudo bash -s /tmp/skills.sh"
    out = plane.run("ssh", "cust-byok", "--", f"echo {script} | base64 -d >/tmp/skills.sh; {under}")
    assert "png=PNG pdf=%PDF-" in out, out
    assert "<title>evaluated 42</title>" in out and '"evaluated 42"' in out, out


GATEWAY_SINCE = "systemctl show -p MainPID,ActiveEnterTimestampMonotonic openclaw-gateway.service"
LANDS_WITHIN_S = 180.0  # a bound on waiting: the mount re-reads its keys every 30 s


def _rotate_storage_under_gateway(
    plane: Plane, sandbox: dict[str, Any], admin: str, bot_id: int
) -> None:
    """`creds rotate` while the gateway serves: its MainPID and the instant it became active
    are the same afterwards (no restart, so Telegram's, Slack's and WhatsApp's sockets stay);
    the old key is then ended at S3 (as R2's temporary credentials "expire automatically"),
    and a file the agent writes to /data still lands in its bucket prefix, with the new key."""
    import boto3

    from fatctl.sandbox.cloud import BUCKET
    from fatctl.sandbox.s3 import revoke_access_key
    from tests.e2e.test_provision_e2e import _admin

    prefix = f"agents/{json.loads(plane.run('agents', 'show', 'cust-byok', '--json'))['agent_id']}/"

    def issued() -> set[str]:
        found = _admin(sandbox["admin"]["cloudflare"], "/inventory")["r2_credentials"]
        return {c["id"] for c in found if c["prefixes"] == [prefix]}

    old_keys, before = issued(), plane.run("ssh", "cust-byok", "--", GATEWAY_SINCE)
    rotated = json.loads(plane.run("creds", "rotate", "cust-byok", "--force", "--json"))
    assert [r["action"] for r in rotated] == ["rotated"], rotated
    new_keys = issued() - old_keys
    assert old_keys and len(new_keys) == 1, (old_keys, new_keys)
    for key in old_keys:
        revoke_access_key(Path(sandbox["state"]) / "s3", key)

    def s3(key: str) -> Any:
        return boto3.client("s3", endpoint_url=sandbox["env"]["FATCTL_R2_ENDPOINT"],
                            region_name="us-east-1", aws_access_key_id=key,
                            aws_secret_access_key="x" * 40)  # fmt: skip

    with pytest.raises(Exception, match="InvalidAccessKeyId"):
        s3(sorted(old_keys)[0]).list_objects_v2(Bucket=BUCKET, Prefix=prefix)

    plane.run("ssh", "cust-byok", "--", "sudo runuser -u openclaw -- sh -c "
              "'echo written after the rotation > /data/after-rotation.md'")  # fmt: skip
    bucket, written = s3("sandbox"), f"{prefix}after-rotation.md"

    def landed() -> bool:
        listed = bucket.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return written in {o["Key"] for o in listed}

    deadline = time.monotonic() + LANDS_WITHIN_S
    while not landed():
        assert time.monotonic() < deadline, f"{written} not in the bucket in {LANDS_WITHIN_S}s"
        time.sleep(2)
    body = bucket.get_object(Bucket=BUCKET, Key=written)["Body"].read()
    assert body == b"written after the rotation\n"
    _round_trip(admin, bot_id, OWNER_SENDER, "after the storage rotation")
    after = plane.run("ssh", "cust-byok", "--", GATEWAY_SINCE)
    assert "MainPID=0" not in before and after == before, (before, after)


def _backup_and_restore(
    plane: Plane, sandbox: dict[str, Any], admin: str, bot_id: int, figure: Callable[..., None]
) -> None:
    """A state backup through fatctl: the box's archive lands in the agent's prefix encrypted
    (age's header, none of the conversation in its bytes), opens in scratch space (`verify`),
    and a restore brings the conversation back to where it was: the next model call carries
    the turns from before the backup and not the one sent after it."""
    import boto3

    from fatctl.sandbox.cloud import BUCKET

    started = time.monotonic()
    taken = json.loads(plane.run("backup", "now", "cust-byok", "--json"))
    figure("state backup (real gateway state, a few sessions)", time.monotonic() - started, "s")
    assert [t["error"] for t in taken] == [""], taken
    figure("state backup size", taken[0]["size_bytes"], "bytes")
    listed = json.loads(plane.run("backup", "list", "cust-byok", "--json"))
    assert [b["name"] for b in listed][:1] == [taken[0]["name"]], listed

    agent_id = json.loads(plane.run("agents", "show", "cust-byok", "--json"))["agent_id"]
    s3 = boto3.client("s3", endpoint_url=sandbox["env"]["FATCTL_R2_ENDPOINT"],
                      region_name="us-east-1", aws_access_key_id="sandbox",
                      aws_secret_access_key="x" * 40)  # fmt: skip
    key = f"agents/{agent_id}/{taken[0]['object_key']}"
    sealed = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert sealed.startswith(b"age-encryption.org/v1\n"), sealed[:40]
    for said in (b"hello from the owner", b"after whatsapp", b"after the storage rotation"):
        assert said not in sealed, f"{said!r} readable in the archive"

    verified = json.loads(plane.run("backup", "verify", "cust-byok", "--json"))
    assert verified["verified"] and verified["name"] == taken[0]["name"], verified

    _round_trip(admin, bot_id, OWNER_SENDER, "said after the backup")
    started = time.monotonic()
    plane.run("backup", "restore", "cust-byok", "--at", taken[0]["name"], "--yes")
    figure("state restore to healthy", time.monotonic() - started, "s")
    _round_trip(admin, bot_id, OWNER_SENDER, "after the restore")
    history = _model_call(admin, "after the restore")["user_text"]
    assert "after the storage rotation" in history, history
    assert "said after the backup" not in history, history


def _servers(sandbox: dict[str, Any]) -> list[Any]:
    from tests.e2e.test_provision_e2e import _admin

    return list(_admin(sandbox["admin"]["hetzner"], "/inventory")["servers"])


# A box's own disk (its overlay's upper layer, under the sandbox's state dir) may hold a key in
# exactly one place: the gateway's environment file, root's and 0600.
SECRET_HOMES = ("disk/etc/openclaw/gateway.env",)


def _leak_scan(plane: Plane, sandbox: dict[str, Any], tmp_path: Path, secrets: list[str]) -> None:
    """No key or token in fatctl's output, its database, the sandbox's files, the boxes' disks
    (outside their 0600 homes), or the boxes' journals and cloud-init logs."""
    places: dict[str, bytes] = {"fatctl output": "\n".join(plane.outputs).encode()}
    places["state database"] = (tmp_path / "data" / "fatctl.sqlite").read_bytes()
    state = Path(sandbox["state"])
    homes = 0
    for path in state.rglob("*"):
        rel = path.relative_to(state).as_posix()
        if not path.is_file() or path.is_symlink() or {"rootfs", "overlay-work"} & set(path.parts):
            continue
        if rel.endswith(SECRET_HOMES):
            assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_uid == 0, rel
            homes += 1
            continue
        if path.stat().st_size < 50_000_000:
            places[f"sandbox {rel}"] = path.read_bytes()
    assert homes == 2, "each box's gateway.env should have been found (and skipped) once"
    for agent in ("cust-byok", "cust-managed"):
        logs = plane.run("ssh", agent, "--", READ_LOGS)
        places[f"{agent} journal and cloud-init logs"] = logs.encode()
        assert len(logs) > 1000, f"{agent}: the logs read back are suspiciously short"
    found = [(where, hashlib.sha256(s.encode()).hexdigest()[:8])
             for s in secrets for where, data in places.items() if s.encode() in data]  # fmt: skip
    assert not found, f"secrets found in: {found}"
    # A backup identity (age's `AGE-SECRET-KEY-1...`) is sealed in the database and lives on a
    # box only on tmpfs for one verify or restore: its prefix is nowhere.
    identities = [where for where, data in places.items() if b"AGE-SECRET-KEY-" in data]
    assert not identities, f"a backup identity found in: {identities}"
