"""Backup and restore figures for a realistic agent state (issue 18): prints, asserts nothing.

Run as root from the repository root: `python -m bench.backup_state [--sessions 200]
[--turns 2]` (measured: about 6 minutes to make the state on this 2-core host, then 2 more).

The state is made by OpenClaw itself: the pinned runtime from the golden image cache
(`/var/cache/fatctl/images/*/rootfs/opt/openclaw/<version>`, its own node) runs `openclaw
gateway run` on loopback with the box's rendered `openclaw.json` plus the gateway's documented
OpenAI-compatible endpoint (docs/gateway/openai-http-api.md: "If the request includes an OpenAI
`user` string, the Gateway derives a stable session key from it"), and each of `--sessions`
conversations gets `--turns` chat turns answered by the sandbox's model stand-in
(`fatctl.sandbox.world`). The gateway stores them as it stores any session (the per-agent
SQLite database, docs/concepts/session.md "Where state lives").

Then the box's own pipeline, the rendered `fat-backup` pointed into a temporary tree (as
tests/integration/storage/test_fat_backup_script.py does, with the real OpenClaw instead of its
stub): `run` (openclaw backup create --verify, age to the agent's recipient, rclone to the
sandbox's S3 stand-in), `verify --newest`, `restore --activate --no-start` (stop, swap, doctor
--non-interactive), then the gateway started on the restored state until `/readyz` answers.
`systemctl` is a stub: no unit runs on the host. Figures move on a shared machine.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx

from cloud_init import layout as L
from cloud_init.files import render_files  # before the layout is pointed into the tree
from fatctl.backup_keys import generate
from fatctl.domain import R2Location, ServicePlan
from fatctl.sandbox.apiemu.runner import ServerThread
from fatctl.sandbox.s3 import start_s3
from fatctl.sandbox.world.app import World
from fatctl.serving import CUSTOM_PROVIDER, ModelChoice
from tests.integration.storage.test_fat_backup_script import _paths as box_paths
from tests.integration.storage.test_fat_backup_script import _write
from tests.unit.cloud_init.variants import Variant, make_spec

BUCKET, PREFIX = "fat-agents", "agents/ag-bench/"
MODEL_KEY, GATEWAY_TOKEN = "bench-model-key", "bench-gateway-token"
MODEL_CALLS = "model"  # the world recorder's kind for a model request
# Box paths, relative to the bench's tree: the script test's, and the workspace the rendered
# openclaw.json names.
TREE = {**box_paths(Path()), "WORKSPACE_DIR": "var/lib/openclaw/workspace"}


def _runtime(version: str | None) -> tuple[Path, Path]:
    """(node, openclaw.mjs) of a cached golden image's runtime."""
    pattern = f"/var/cache/fatctl/images/*/rootfs/opt/openclaw/{version or '*'}"
    for found in sorted(glob.glob(pattern), reverse=True):
        root = Path(found).parents[2]
        nodes = sorted(root.glob("opt/node/*/bin/node"))
        mjs = Path(found) / "node_modules/openclaw/openclaw.mjs"
        if nodes and mjs.exists():
            return nodes[-1], mjs
    sys.exit(f"no cached OpenClaw runtime matches {pattern}: build the golden image first")


def _du(path: str | Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def _mib(n: float) -> str:
    return f"{n / 2**20:.2f} MiB"


class Bench:
    def __init__(self, tmp: Path, node: Path, mjs: Path, model_url: str, s3_url: str) -> None:
        self.tmp, self.node, self.mjs = tmp, node, mjs
        on_box = {name: getattr(L, name) for name in TREE}
        for name, rel in TREE.items():
            setattr(L, name, str(tmp / rel))
        L.SERVICE_USER, L.SERVICE_UID = "root", 0  # this host has no openclaw user
        identity, recipient = generate()
        self.identity = identity.reveal()
        model = ModelChoice(CUSTOM_PROVIDER, "bench-model", base_url=model_url)
        spec = replace(make_spec(Variant("debian-12", False, ServicePlan.BYOK, False)),
                       r2=R2Location(s3_url, BUCKET, PREFIX), backup_recipient=recipient,
                       model=model, channels=(), senders=())  # fmt: skip
        files = render_files(spec)
        for name in ("RCLONE_CONFIG", "R2_AWS_CONFIG", "R2_CREDENTIALS_SCRIPT",
                     "BACKUP_RECIPIENT", "BACKUP_POLICY"):  # fmt: skip
            _write(getattr(L, name), files[on_box[name]].content, files[on_box[name]].mode)
        self.script = tmp / "fat-backup"
        _write(self.script, files[L.BACKUP_SCRIPT].content, 0o755)
        config = json.loads(files[on_box["OPENCLAW_CONFIG"]].content)
        config["gateway"]["http"] = {"endpoints": {"chatCompletions": {"enabled": True}}}
        config["gateway"]["port"] = self.port = _free_port()
        _write(L.OPENCLAW_CONFIG, json.dumps(config, indent=2))
        _write(L.R2_ENV, "RCLONE_CONFIG_R2_ACCESS_KEY_ID=key1\n"
                         "RCLONE_CONFIG_R2_SECRET_ACCESS_KEY=secret1\n", 0o600)  # fmt: skip
        _write(L.GATEWAY_ENV, f"OPENCLAW_GATEWAY_TOKEN={GATEWAY_TOKEN}\n"
                              f"{model.key_env}={MODEL_KEY}\n", 0o600)  # fmt: skip
        runtime = Path(L.RUNTIME_ROOT) / "bench/bin/openclaw"
        _write(runtime, f'#!/bin/sh\nexec {node} {mjs} "$@"\n', 0o755)
        (Path(L.RUNTIME_ROOT) / "current").symlink_to("bench")
        _write(L.INSTALL_SCRIPT, "#!/bin/sh\nexit 0\n", 0o755)  # no plugins to sync here
        _write(tmp / "bin/systemctl", "#!/bin/sh\necho active\n", 0o755)
        (tmp / "run").mkdir(parents=True, exist_ok=True)  # a box's /run exists
        Path(L.STATE_DIR).mkdir(parents=True, exist_ok=True)
        Path(L.WORKSPACE_DIR).mkdir(parents=True, exist_ok=True)
        self.env = {"PATH": f"{tmp / 'bin'}:{os.environ['PATH']}", "LANG": "C.UTF-8"}

    def gateway(self) -> subprocess.Popen[bytes]:
        """`openclaw gateway run` as the box's unit runs it, with its env file's variables."""
        env = {**os.environ, "HOME": L.STATE_DIR, "OPENCLAW_STATE_DIR": L.STATE_DIR,
               "OPENCLAW_CONFIG_PATH": L.OPENCLAW_CONFIG, "OPENCLAW_GATEWAY_TOKEN": GATEWAY_TOKEN,
               "OPENCLAW_SUPERVISOR_MODE": "external"}  # fmt: skip
        for line in Path(L.GATEWAY_ENV).read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        log = open(self.tmp / "gateway.log", "ab")  # noqa: SIM115 - the child's
        return subprocess.Popen([str(self.node), str(self.mjs), "gateway", "run"], env=env,
                                stdout=log, stderr=log, cwd=L.STATE_DIR)  # fmt: skip

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 300) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                sys.exit(f"the gateway exited {proc.returncode}: see {self.tmp}/gateway.log")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        sys.exit(f"the gateway was not ready in {timeout:.0f} s: see {self.tmp}/gateway.log")

    def chat(self, conversation: int, turns: int) -> None:
        with httpx.Client(timeout=300) as client:
            for turn in range(turns):
                item = conversation * 31 + turn
                text = (f"Conversation {conversation}, message {turn}: please remember that "
                        f"item {item} goes on the list for later. " * 3)  # fmt: skip
                answer = client.post(
                    f"http://127.0.0.1:{self.port}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
                    json={"model": "openclaw/default", "user": f"conv:{conversation}",
                          "messages": [{"role": "user", "content": text}]},
                )  # fmt: skip
                answer.raise_for_status()

    def fat_backup(self, *args: str) -> tuple[float, dict[str, object]]:
        started = time.monotonic()
        proc = subprocess.run([str(self.script), *args], capture_output=True, text=True,
                              env=self.env, timeout=3600)  # fmt: skip
        took = time.monotonic() - started
        lines = proc.stdout.strip().splitlines()
        out = json.loads(lines[-1]) if lines else {}
        if proc.returncode != 0 or not out.get("ok"):
            sys.exit(f"fat-backup {args[0]} failed: {out.get('error') or proc.stderr[-600:]}")
        return took, out

    def deliver_identity(self) -> None:
        _write(L.BACKUP_IDENTITY, self.identity + "\n", 0o600)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _plain_size(bench: Bench, s3_url: str, key: str) -> int:
    """The archive's size before age: the object fetched and decrypted here."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                      aws_access_key_id="admin", aws_secret_access_key="admin")  # fmt: skip
    sealed = bench.tmp / "sealed.age"
    sealed.write_bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    identity = bench.tmp / "identity"
    _write(identity, bench.identity + "\n", 0o600)
    plain = bench.tmp / "plain.tar.gz"
    subprocess.run(["age", "-d", "-i", str(identity), "-o", str(plain), str(sealed)], check=True)
    identity.unlink()
    return plain.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runtime-version", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary tree")
    args = parser.parse_args()
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("age", "rclone", "jq", "runuser")):
        sys.exit("needs root, age, rclone, jq and runuser (as the box's script does)")
    node, mjs = _runtime(args.runtime_version)
    # Under /var/lib, where a box keeps its state, not below the world-writable /tmp. (Doctor's
    # "Unsafe fallback OpenClaw temp dir" seen while writing this came from the restored tree
    # being owned by the box's service uid while doctor ran as root; SERVICE_UID is 0 above.)
    tmp = Path(tempfile.mkdtemp(prefix="fat-backup-bench.", dir="/var/lib"))
    world = World()
    public = ServerThread(world.public(), "127.0.0.1", 0).start()
    s3 = start_s3(tmp / "s3")
    gateways: list[subprocess.Popen[bytes]] = []
    try:
        world.keys.add(MODEL_KEY)
        bench = Bench(tmp / "box", node, mjs, f"http://127.0.0.1:{public.port}/v1", s3.url)
        import boto3

        boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1",
                     aws_access_key_id="admin",
                     aws_secret_access_key="admin").create_bucket(Bucket=BUCKET)  # fmt: skip
        version = mjs.resolve().parents[2].name
        print(f"runtime: {version}  sessions: {args.sessions}  turns: {args.turns}")
        gw = bench.gateway()
        gateways.append(gw)
        bench.wait_ready(gw)
        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda n: bench.chat(n, args.turns), range(args.sessions)))
        made = time.monotonic() - started
        gw.terminate()
        gw.wait(60)
        turns = len(world.recorder.items(MODEL_CALLS))
        state = _du(L.STATE_DIR)
        print(f"state made:        {made:.1f} s through the gateway ({turns} model calls), "
              f"state dir {_mib(state)}")  # fmt: skip

        took, run = bench.fat_backup("run", "--kind", "manual", "--json")
        sealed = int(str(run["size_bytes"]))
        plain = _plain_size(bench, s3.url, PREFIX + str(run["object"]))
        print(f"backup (run):      {took:.1f} s wall ({run['took_s']} s by the script)")
        print(f"archive:           {_mib(plain)} plain tar.gz, {_mib(sealed)} encrypted")
        bench.deliver_identity()
        took, verified = bench.fat_backup("verify", "--newest", "--json")
        print(f"verify --newest:   {took:.1f} s (preflight {verified['preflight']})")
        bench.deliver_identity()
        took, _ = bench.fat_backup("restore", str(run["name"]), "--activate",
                                          "--no-start", "--json")  # fmt: skip
        unpacked = _du(L.STATE_DIR)  # before the gateway rebuilds its cache/
        gw = bench.gateway()
        gateways.append(gw)
        ready = bench.wait_ready(gw)
        # One more turn in the last conversation: the model must see its earlier turns, which
        # only the restored state holds (the gateway sends the session's history with it).
        last = args.sessions - 1
        bench.chat(last, 1)
        sent = world.recorder.items(MODEL_CALLS)[-1]["user_text"]
        history = f"Conversation {last}, message 0:" in sent
        gw.terminate()
        gw.wait(60)
        print(
            f"restore:           {took:.1f} s (fetch, decrypt, verify, swap, doctor) "
            f"+ {ready:.1f} s gateway start to /readyz = {took + ready:.1f} s to ready"
        )
        print(f"history restored:  {'yes' if history else 'NO'} (conversation {last}'s earlier "
              "turns reach the model after the restore)")  # fmt: skip
        print(f"restored state:    {_mib(unpacked)} ({unpacked / plain:.1f}x the plain "
              "archive; the live state's rebuildable cache/ is not archived)")  # fmt: skip
        jitter_h = L_ORIGINAL_JITTER_S / 3600
        print(f"recovery point:    timer OnCalendar={L_ORIGINAL_SCHEDULE} (daily) with up to "
              f"{jitter_h:g} h RandomizedDelaySec: at most 24 h + {jitter_h:g} h of state lost "
              "without a manual or pre-change backup")  # fmt: skip
    finally:
        for gw in gateways:
            if gw.poll() is None:
                gw.kill()
                gw.wait(60)
        public.stop()
        s3.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


L_ORIGINAL_SCHEDULE, L_ORIGINAL_JITTER_S = L.BACKUP_SCHEDULE, L.BACKUP_JITTER_S

if __name__ == "__main__":
    main()
