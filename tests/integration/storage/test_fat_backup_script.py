"""The box's `fat-backup`, rendered as a box gets it and run on this host (no box): the real
`age`, the real `rclone` 1.60 against the sandbox's S3 stand-in (the rendered rclone.conf, AWS
config and credential script, as the /data mount uses them), and a stand-in `openclaw` that
behaves as OpenClaw 2026.9.6 documents its backup commands (`openclaw_stub.py`). Box paths are
the layout's, pointed into a temporary tree at render time (as tests/unit/cloud_init does);
`systemctl` is a stub that logs what it is asked.

What must hold: the archive leaves the box only encrypted to the agent's recipient (the object
starts `age-encryption.org/v1` and holds none of the state's bytes), as a pair whose sidecar
goes last; `list`, `verify` and `restore --activate` work from R2 with the identity delivered to
its tmpfs home and removed afterwards; prune deletes exactly what
`fatctl.services.backup.retention` says; `last.json` is what fat-health reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cloud_init import layout as L
from cloud_init.files import render_files
from fatctl.backup_keys import generate
from fatctl.domain import R2Location, ServicePlan
from fatctl.services.backup.retention import STAMP_FORMAT, to_delete
from tests.unit.cloud_init.variants import Variant, make_spec

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("age", "rclone", "jq", "runuser")),
        reason="needs root, age, rclone, jq and runuser",
    ),
]

BUCKET, PREFIX = "fat-agents", "agents/ag-7f3k2/"
BACKUPS = f"{PREFIX}backups/"
SECRET_MARKER = "session-transcript-7c1e0b"  # state bytes that must never reach S3 in clear
STUB = Path(__file__).with_name("openclaw_stub.py")
MASK = "mask --runtime --now openclaw-gateway.service"
UNMASK = "unmask --runtime openclaw-gateway.service"
START = "start --no-block openclaw-gateway.service"


@dataclass
class Box:
    root: Path
    script: Path
    health: Path
    s3: Any
    identity: str
    recipient: str
    spec: Any

    def run(self, *args: str, ok: bool = True, **env: str) -> tuple[int, dict[str, Any]]:
        proc = subprocess.run([str(self.script), *args], capture_output=True, text=True,
                              env={**self.env, "STUB_LOG": str(self.stub_log), **env},
                              timeout=300)  # fmt: skip
        lines = proc.stdout.strip().splitlines()
        assert len(lines) <= 1, proc.stdout  # one JSON object per command
        out = json.loads(lines[0]) if lines else {}
        if ok:
            assert proc.returncode == 0, proc.stderr
            assert out.get("ok") is True, out
        assert self.identity not in proc.stdout + proc.stderr
        return proc.returncode, out

    @property
    def env(self) -> dict[str, str]:
        """A box's root environment: PATH (with the systemctl stub first), no AWS_* settings of
        this host (rclone takes only its own config's credential_process)."""
        return {"PATH": f"{self.root / 'bin'}:{os.environ['PATH']}", "LANG": "C.UTF-8"}

    @property
    def stub_log(self) -> Path:
        return self.root / "openclaw-calls.jsonl"

    def objects(self) -> dict[str, bytes]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=BACKUPS).get("Contents", [])
        return {o["Key"][len(BACKUPS):]: self.s3.get_object(Bucket=BUCKET, Key=o["Key"])
                ["Body"].read() for o in listed}  # fmt: skip

    def deliver_identity(self) -> Path:
        """As fatctl's deliver_file does: root's, 0600, at the layout's tmpfs path."""
        path = Path(L.BACKUP_IDENTITY)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.identity + "\n")
        path.chmod(0o600)
        return path

    def systemctl_calls(self) -> list[str]:
        log = self.root / "systemctl.log"
        return log.read_text().splitlines() if log.exists() else []


def _paths(tmp: Path) -> dict[str, str]:
    return {
        "STATE_DIR": "var/lib/openclaw", "BACKUP_DIR": "var/lib/fat-backup",
        "BACKUP_STATUS": "var/lib/fat-backup/last.json", "BACKUP_RECIPIENT": "etc/fb/recipient",
        "BACKUP_POLICY": "etc/fb/policy.conf", "BACKUP_IDENTITY": "run/fat-backup/identity",
        "BACKUP_LOCK": "run/fat-backup.lock", "RUNTIME_ROOT": "opt/openclaw",
        "GATEWAY_ENV": "etc/openclaw/gateway.env", "OPENCLAW_CONFIG": "etc/openclaw/openclaw.json",
        "RCLONE_CONFIG": "etc/rclone/rclone.conf", "R2_AWS_CONFIG": "etc/rclone/aws.conf",
        "R2_CREDENTIALS_SCRIPT": "sbin/fat-r2-credentials", "R2_ENV": "etc/rclone/r2.env",
        "RCLONE_CACHE": "var/cache/rclone", "DATA_DIR": "data",
        "INSTALL_SCRIPT": "sbin/fat-install-runtime",
    }  # fmt: skip


def _write(path: str | Path, text: str, mode: int = 0o644) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    Path(path).chmod(mode)


@pytest.fixture
def box(tmp_path: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    on_box = {name: getattr(L, name) for name in _paths(tmp_path)}  # render_files' keys
    for name, rel in _paths(tmp_path).items():
        monkeypatch.setattr(L, name, str(tmp_path / rel))
    monkeypatch.setattr(L, "SERVICE_USER", "root")  # runuser -u root: the stub runs as root
    identity, recipient = generate()
    spec = replace(make_spec(Variant("debian-12", False, ServicePlan.MANAGED, False)),
                   r2=R2Location(s3_server.url, BUCKET, PREFIX),
                   backup_recipient=recipient)  # fmt: skip
    files = render_files(spec)
    for name in ("RCLONE_CONFIG", "R2_AWS_CONFIG", "R2_CREDENTIALS_SCRIPT", "BACKUP_RECIPIENT",
                 "BACKUP_POLICY"):  # fmt: skip
        item = files[on_box[name]]
        _write(getattr(L, name), item.content, item.mode)
    for box_path, here in ((L.BACKUP_SCRIPT, "fat-backup"), (L.HEALTH_COMMAND, "fat-health")):
        _write(tmp_path / here, files[box_path].content, files[box_path].mode)
    _write(L.R2_ENV, "RCLONE_CONFIG_R2_ACCESS_KEY_ID=key1\n"
                     "RCLONE_CONFIG_R2_SECRET_ACCESS_KEY=secret1\n", 0o600)  # fmt: skip
    (tmp_path / "run").mkdir()  # a box's /run exists
    _write(L.GATEWAY_ENV, "OPENCLAW_GATEWAY_TOKEN=gw-token-1\n", 0o600)
    _write(L.OPENCLAW_CONFIG, '{"rendered": "by fatctl"}\n')
    _write(f"{L.STATE_DIR}/state/openclaw.sqlite", f"SQLite format 3 {SECRET_MARKER} v1\n")
    _write(f"{L.STATE_DIR}/workspace/AGENTS.md", "be helpful\n")
    _write(f"{L.STATE_DIR}/npm/plugin/index.js", "not archived\n")
    runtime = Path(L.RUNTIME_ROOT) / "2026.9.6/bin/openclaw"
    _write(runtime, f'#!/bin/sh\nexec {sys.executable} {STUB} "$@"\n', 0o755)
    (Path(L.RUNTIME_ROOT) / "current").symlink_to("2026.9.6")
    # The runtime's plugin sync (the gateway's ExecStartPre) logs itself beside the stub.
    _write(
        L.INSTALL_SCRIPT,
        '#!/bin/sh\nprintf \'{"argv": ["fat-install-runtime", '
        '"%s"], "env": {}}\\n\' "$1" >> "$STUB_LOG"\n[ -z "$STUB_SYNC_FAIL" ]\n',
        0o755,
    )
    _write(tmp_path / "bin/systemctl",
           f'#!/bin/sh\necho "$*" >> {tmp_path}/systemctl.log\necho active\n', 0o755)  # fmt: skip
    s3 = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1",
                      aws_access_key_id="admin", aws_secret_access_key="admin")  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    yield Box(tmp_path, tmp_path / "fat-backup", tmp_path / "fat-health", s3,
              identity.reveal(), recipient, spec)  # fmt: skip


def test_run_uploads_an_encrypted_pair_and_records_it(box: Box) -> None:
    _, out = box.run("run", "--kind", "manual", "--json")
    name = out["name"]
    assert out["kind"] == "manual" and out["object"] == f"backups/{name}.tar.gz.age"
    assert out["gateway"] == "untouched" and out["pruned"] is None
    objects = box.objects()
    assert set(objects) == {f"{name}.tar.gz.age", f"{name}.json"}
    sealed = objects[f"{name}.tar.gz.age"]
    assert sealed.startswith(b"age-encryption.org/v1\n")
    assert SECRET_MARKER.encode() not in sealed and b"openclaw" not in sealed
    sidecar = json.loads(objects[f"{name}.json"])
    assert sidecar["sha256"] == out["sha256"] and sidecar["size_bytes"] == len(sealed)
    assert sidecar["recipient"] == box.recipient and sidecar["runtime"] == "2026.9.6"
    assert box.identity not in objects[f"{name}.json"].decode()
    # Nothing plaintext is left behind on the box, and the identity was never there.
    leftovers = [p for p in Path(L.BACKUP_DIR).rglob("*") if p.is_file()]
    assert leftovers == [Path(L.BACKUP_STATUS)]
    assert not Path(L.BACKUP_IDENTITY).exists()
    last = json.loads(Path(L.BACKUP_STATUS).read_text())
    assert last == {k: out[k] for k in ("at", "object", "size_bytes", "took_s", "ok", "error")}
    # The archive opens with the identity and holds the state, not the plugins (npm/).
    opened = subprocess.run(["age", "-d", "-i", str(box.deliver_identity())], input=sealed,
                            capture_output=True, check=True).stdout  # fmt: skip
    listing = subprocess.run(["tar", "tz"], input=opened, capture_output=True, check=True)
    assert b"var/lib/openclaw/state/openclaw.sqlite" in listing.stdout
    assert b"/npm/" not in listing.stdout
    # fat-health reports the same record under `backup`.
    health = subprocess.run([str(box.health), "--json"], capture_output=True, text=True,
                            env=box.env)  # fmt: skip
    assert json.loads(health.stdout)["backup"] == last


def test_list_verify_and_restore_from_r2(box: Box) -> None:
    _, first = box.run("run", "--kind", "pre-move", "--stop-gateway", "--json")
    assert first["gateway"] == "restarted"
    assert box.systemctl_calls() == [MASK, UNMASK, START]
    _, listed = box.run("list", "--json")
    assert [b["name"] for b in listed["backups"]] == [first["name"]]
    assert listed["backups"][0]["size_bytes"] == first["size_bytes"]
    assert listed["incomplete"] == []

    box.deliver_identity()
    _, verified = box.run("verify", "--newest", "--json")
    assert (verified["name"], verified["preflight"]) == (first["name"], "exact")
    assert not Path(L.BACKUP_IDENTITY).exists()  # removed on exit

    state = Path(L.STATE_DIR)
    (state / "state/openclaw.sqlite").write_text("SQLite format 3 later\n")
    (state / "workspace/NEW.md").write_text("written after the backup\n")
    box.deliver_identity()
    _, restored = box.run("restore", first["name"], "--activate", "--json")
    assert restored["started"] is True and restored["preflight"] == "exact"
    assert SECRET_MARKER in (state / "state/openclaw.sqlite").read_text()
    assert not (state / "workspace/NEW.md").exists()
    assert (Path(restored["displaced"]) / "workspace/NEW.md").exists()
    assert state.stat().st_uid == L.SERVICE_UID and state.stat().st_mode & 0o777 == 0o700
    assert not Path(L.BACKUP_IDENTITY).exists()
    # The identity was never written anywhere else, by the script or OpenClaw.
    for path in box.root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert box.identity.encode() not in path.read_bytes(), path
    logged = [json.loads(line) for line in box.stub_log.read_text().splitlines()]
    calls = [entry["argv"] for entry in logged]
    doctor = calls.index(["doctor", "--non-interactive"])
    # The box's plugins go back before doctor looks (archives leave npm/ out), and doctor
    # leaves the service to systemd (on a box, without the policy it failed with ENOENT).
    assert calls[doctor - 1] == ["fat-install-runtime", "--sync-plugins"]
    assert logged[doctor]["env"]["OPENCLAW_SERVICE_REPAIR_POLICY"] == "external"
    # The gateway was stopped (runtime-masked) before the swap, and started after.
    assert box.systemctl_calls()[-3:] == [MASK, UNMASK, START]

    # doctor failing on the restored state puts the previous state back.
    box.deliver_identity()
    (state / "workspace/NEWER.md").write_text("after the restore\n")
    code, refused = box.run("restore", first["name"], "--activate", "--json", ok=False,
                            STUB_DOCTOR_FAIL="1")  # fmt: skip
    assert code == 1 and "the previous state is back" in refused["error"]
    assert (state / "workspace/NEWER.md").exists()
    assert box.systemctl_calls()[-3:] == [MASK, UNMASK, START]

    # Any other failure after the swap puts it back too (the plugin sync here), before the
    # gateway starts again; and the spare copy of the earlier restore is still there.
    box.deliver_identity()
    code, refused = box.run("restore", first["name"], "--activate", "--json", ok=False,
                            STUB_SYNC_FAIL="1")  # fmt: skip
    assert code == 1 and refused["ok"] is False
    assert (state / "workspace/NEWER.md").exists()
    assert (Path(restored["displaced"]) / "workspace/NEW.md").exists()
    assert box.systemctl_calls()[-3:] == [MASK, UNMASK, START]
    assert not Path(L.BACKUP_IDENTITY).exists()


def test_keep_stopped_leaves_the_gateway_masked_and_data_unmounted(box: Box) -> None:
    """Before a rebuild or move: the old gateway must not come back (same bot, same WhatsApp
    login), and /data is flushed and unmounted."""
    _, out = box.run("run", "--kind", "pre-move", "--stop-gateway", "--keep-stopped", "--json")
    assert out["gateway"] == "stopped"
    assert box.systemctl_calls() == [MASK, "stop rclone-data.service"]


def test_a_failed_backup_starts_the_gateway_it_stopped(box: Box) -> None:
    code, out = box.run("run", "--kind", "pre-move", "--stop-gateway", "--keep-stopped",
                        "--json", ok=False, STUB_CREATE_FAIL="1")  # fmt: skip
    assert code == 1 and out["error"] == "openclaw backup create failed"
    assert box.systemctl_calls() == [MASK, UNMASK, START]
    assert box.objects() == {}
    assert json.loads(Path(L.BACKUP_STATUS).read_text())["ok"] is False


def test_refusals_are_one_line_and_change_nothing(box: Box) -> None:
    _, out = box.run("run", "--kind", "manual", "--json")
    name = out["name"]
    # No identity delivered: verify and restore refuse before touching anything.
    code, refused = box.run("verify", name, "--json", ok=False)
    assert code == 1 and "no identity" in refused["error"]
    code, refused = box.run("restore", name, "--json", ok=False)
    assert code == 1 and "--activate" in refused["error"]
    # A newer state than this box's OpenClaw can open is refused before the gateway stops.
    box.deliver_identity()
    before = box.systemctl_calls()
    code, refused = box.run("restore", name, "--activate", "--json", ok=False,
                            STUB_PREFLIGHT="incompatible")  # fmt: skip
    assert code == 1 and "preflight: incompatible" in refused["error"]
    assert box.systemctl_calls() == before
    assert not Path(L.BACKUP_IDENTITY).exists()
    # A tampered archive does not match its sidecar.
    key = f"{BACKUPS}{name}.tar.gz.age"
    box.s3.put_object(Bucket=BUCKET, Key=key, Body=b"age-encryption.org/v1\nforged")
    box.deliver_identity()
    code, refused = box.run("verify", name, "--json", ok=False)
    assert "does not match its sidecar" in refused["error"]
    # Bad usage: exit 2, nothing run.
    code, _ = box.run("run", "--kind", "Bad Kind", "--json", ok=False)
    assert code == 2
    code, _ = box.run("restore", "../../etc", "--activate", "--json", ok=False)
    assert code == 1
    # No recipient: the failure is recorded for fat-health, and nothing is uploaded.
    Path(L.BACKUP_RECIPIENT).unlink()
    count = len(box.objects())
    code, refused = box.run("run", "--kind", "manual", "--json", ok=False)
    assert code == 1 and "no recipient" in refused["error"]
    last = json.loads(Path(L.BACKUP_STATUS).read_text())
    assert last["ok"] is False and "no recipient" in last["error"]
    assert len(box.objects()) == count


def test_prune_deletes_exactly_what_retention_says(box: Box) -> None:
    """Forty days of scheduled pairs, older manual and pre-* pairs, lone halves and a foreign
    object, stamped at midday so the few seconds between this test's clock and the script's
    cannot cross a day, week or age boundary."""
    now = datetime.now(UTC)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    names = ["notes.txt"]
    for days in range(40):
        stamp = (noon - timedelta(days=days + 1)).strftime(STAMP_FORMAT)
        names += [f"{stamp}-scheduled.tar.gz.age", f"{stamp}-scheduled.json"]
    for days, kind in ((3, "manual"), (29, "pre-upgrade"), (31, "manual"), (45, "pre-move")):
        stamp = (noon - timedelta(days=days, hours=6)).strftime(STAMP_FORMAT)
        names += [f"{stamp}-{kind}.tar.gz.age", f"{stamp}-{kind}.json"]
    names.append((noon - timedelta(days=2)).strftime(STAMP_FORMAT) + "-manual.tar.gz.age")
    names.append((now - timedelta(hours=2)).strftime(STAMP_FORMAT) + "-manual.tar.gz.age")
    for name in names:
        box.s3.put_object(Bucket=BUCKET, Key=BACKUPS + name, Body=b"x")
    expected = to_delete(names, now)
    assert expected and "notes.txt" not in expected
    _, pruned = box.run("prune", "--json")
    assert sorted(pruned["deleted"]) == [f"backups/{n}" for n in expected]
    assert set(box.objects()) == set(names) - set(expected)


def test_a_scheduled_run_prunes(box: Box) -> None:
    old = (datetime.now(UTC) - timedelta(days=400)).strftime(STAMP_FORMAT)
    for suffix in (".tar.gz.age", ".json"):
        box.s3.put_object(Bucket=BUCKET, Key=f"{BACKUPS}{old}-manual{suffix}", Body=b"x")
    _, out = box.run("run", "--kind", "scheduled", "--json")
    assert out["pruned"] == [f"backups/{old}-manual.json", f"backups/{old}-manual.tar.gz.age"]
    assert set(box.objects()) == {f"{out['name']}.tar.gz.age", f"{out['name']}.json"}


@pytest.mark.skipif(not (Path("/dev/fuse").exists() and shutil.which("fusermount3")),
                    reason="needs /dev/fuse and fusermount3")  # fmt: skip
def test_the_agents_data_mount_does_not_show_backups(box: Box) -> None:
    """`/data` is the same R2 prefix; the rendered mount's `--exclude /backups/**` hides them
    (`rclone mount --help`, 1.60: "all the rclone filters can be used to select a subset of
    the files to be visible in the mount")."""
    from tests.integration.storage.test_rotation_under_mount import _unit_process, _wait

    box.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}notes.md", Body=b"the agent's")
    box.run("run", "--kind", "manual", "--json")
    data = Path(L.DATA_DIR)
    data.mkdir()
    unit = render_files(box.spec)[f"/etc/systemd/system/{L.DATA_UNIT}"].content
    argv, env = _unit_process(unit, {}, data)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: os.path.ismount(data), 30, "the mount")
        assert sorted(os.listdir(data)) == ["notes.md"]
        assert not (data / "backups").exists()
    finally:
        subprocess.run(["fusermount3", "-uz", str(data)], check=False)
        proc.terminate()
        proc.wait(30)
