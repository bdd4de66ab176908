"""One sandbox box: a real Debian with systemd, booted by `systemd-nspawn` as a child process.

The box's record (`box.json`) holds what is needed to find and stop it again, also from another
process: its addresses, image and the pid of its nspawn. A pid is only trusted while its
/proc cmdline still names this box's directory, so a recycled pid is never signalled.
PID 1 of this host is not systemd: no machinectl, no `systemd-run -M`; commands enter the box
with `nsenter` on its leader (the box's own PID 1).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fatctl.errors import FatctlError
from fatctl.sandbox import netns, procs
from fatctl.sandbox.nspawn_cmd import BoxPaths, boot_cmd, meta_data, nsenter_cmd

# nspawn answers SIGTERM by sending its --kill-signal (SIGRTMIN+4: poweroff) to the box's
# PID 1 and exits when the box is down. Other signals kill nspawn alone and orphan the box.
STOP_SIGNAL = signal.SIGTERM


class BoxError(FatctlError):
    """A box could not be booted, reached or stopped."""


@dataclass
class BoxRecord:
    server_id: int
    name: str
    ipv4: str
    ipv6: str
    image: str
    instance_id: str
    pid: int | None = None
    leader: int | None = None  # the box's PID 1, with its start time (see procs)
    leader_start: int | None = None


class Box:
    """A box under `box_dir`; `create` once, then `start`/`power_off`/`reboot`, `delete` last."""

    def __init__(self, box_dir: Path) -> None:
        self.paths = BoxPaths(box_dir)
        self._child: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, box_dir: Path, record: BoxRecord, user_data: str, extra_meta: str = "") -> Box:
        """Lay out a new box: empty disk layer, NoCloud seed, record. Does not boot it."""
        box = cls(box_dir)
        for path in (box.paths.upper, box.paths.work, box.paths.merged):
            path.mkdir(parents=True, exist_ok=True)
        box.paths.seed.mkdir(mode=0o700, exist_ok=True)
        # The seed holds the host private keys: readable by root only.
        seed_files = {
            "user-data": user_data,
            "meta-data": meta_data(record.instance_id, record.name) + extra_meta,
        }
        for name, text in seed_files.items():
            path = box.paths.seed / name
            path.touch(mode=0o600)
            path.write_text(text)
        box._save(record)
        return box

    @property
    def record(self) -> BoxRecord:
        return BoxRecord(**json.loads(self.paths.record.read_text()))

    @property
    def net(self) -> netns.BoxNet:
        rec = self.record
        return netns.box_net(rec.server_id, rec.ipv4, rec.ipv6)

    def _save(self, record: BoxRecord) -> None:
        tmp = self.paths.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
        tmp.replace(self.paths.record)

    def pid(self) -> int | None:
        """The nspawn pid if that process is still this box's (not a recycled pid)."""
        pid = self.record.pid
        if pid is None:
            return None
        if self._child is not None and self._child.pid == pid:
            # Our own child: trust it while it runs (its cmdline is python's until it execs).
            return pid if self._child.poll() is None else None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if str(self.paths.merged).encode() in cmdline else None

    def running(self) -> bool:
        """nspawn runs, or the box's PID 1 still does (an nspawn killed from outside)."""
        rec = self.record
        orphan = bool(rec.leader and rec.leader_start and procs.alive(rec.leader, rec.leader_start))
        return self.pid() is not None or orphan

    def leader(self) -> int | None:
        """The box's PID 1, once it exists: the child of nspawn in a pid namespace of its own.

        While the box starts, nspawn's first child is a helper in nspawn's own pid namespace
        that forks the box's init and exits; taking it for the leader made a just-started box
        look stopped a moment later."""
        pid = self.pid()
        if pid is None:
            return None
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            outer = os.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            return None
        for child in children:
            try:
                if os.readlink(f"/proc/{child}/ns/pid") != outer:
                    return int(child)
            except OSError:
                continue  # gone in the meantime
        return None

    def start(self) -> int:
        """Boot the box (network first); returns the nspawn pid. A no-op if already running."""
        current = self.pid()
        if current is not None:
            return current
        self.power_off()  # a box left orphaned by a killed nspawn is stopped first
        rec = self.record
        netns.ensure_box_net(self.net)
        argv = boot_cmd(self.paths, Path(rec.image), self.net.netns_path, rec.server_id)
        with self.paths.console.open("ab") as console:
            # Own session: the box outlives an emulator restart and ignores its Ctrl-C.
            self._child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        rec.pid = self._child.pid
        self._save(rec)
        leader = self._wait_leader(timeout=30)
        rec.leader, rec.leader_start = leader, procs.start_time(leader)
        self._save(rec)
        return rec.pid

    def _wait_leader(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (leader := self.leader()) is None:
            if not self.running():
                raise BoxError(f"box {self.record.name} exited at boot: {self.console_tail()}")
            if time.monotonic() > deadline:
                raise BoxError(f"box {self.record.name} did not start in {timeout:.0f}s")
            time.sleep(0.1)
        return leader

    def console_tail(self) -> str:
        """The last line the box (or nspawn) wrote to its console, for one-line errors."""
        try:
            lines = self.paths.console.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no console output"
        return lines[-1] if lines else "no console output"

    def power_off(self, timeout: float = 90) -> None:
        """Clean shutdown (systemd's poweroff in the box); killed if it does not finish in time.

        The box's PID 1 is killed last if it outlived nspawn, so no box process survives.
        """
        pid, rec = self.pid(), self.record
        if pid is not None:
            os.kill(pid, STOP_SIGNAL)
            if not self._wait_exit(pid, timeout):
                # Killing the box's PID 1 ends its whole pid namespace; nspawn follows.
                if rec.leader and rec.leader_start:
                    procs.kill_verified(rec.leader, rec.leader_start)
                os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, 10)
        if (
            rec.leader
            and rec.leader_start
            and not procs.kill_verified(rec.leader, rec.leader_start)
        ):
            raise BoxError(f"box {rec.name} did not stop")
        self._clear_pid()

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._child is not None and self._child.pid == pid:
                if self._child.poll() is not None:
                    return True
            elif self.pid() is None:
                return True
            time.sleep(0.2)
        return False

    def _clear_pid(self) -> None:
        rec = self.record
        rec.pid = rec.leader = rec.leader_start = None
        self._save(rec)
        self._child = None

    def reboot(self) -> None:
        self.power_off()
        self.start()

    def delete(self) -> None:
        """Stop the box and remove its network and everything under its directory."""
        try:
            if self.paths.record.exists():
                self.power_off(timeout=30)
                netns.remove_box_net(self.net)
        finally:
            shutil.rmtree(self.paths.root, ignore_errors=True)

    def run(
        self, argv: list[str], *, input: str | None = None, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the running box as root (via nsenter on its leader)."""
        leader = self.leader()
        if leader is None:
            raise BoxError(f"box {self.record.name} is not running")
        result = subprocess.run(
            nsenter_cmd(leader, argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise BoxError(f"`{argv[0]}` in box {self.record.name} exited {result.returncode}")
        return result

    def wait_booted(self, timeout: float = 120) -> str:
        """Wait until systemd in the box finished starting up; returns its state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise BoxError(f"box {self.record.name} stopped at boot: {self.console_tail()}")
            if self.leader() is not None:
                try:
                    result = self.run(
                        ["systemctl", "is-system-running", "--wait"], timeout=timeout, check=False
                    )
                except BoxError:
                    result = None  # its PID 1 changed under us while starting: ask again
                state = result.stdout.strip() if result else ""
                if state in ("running", "degraded"):
                    return state
            time.sleep(0.5)
        raise BoxError(f"box {self.record.name} did not finish booting in {timeout:.0f}s")
