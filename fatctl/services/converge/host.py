"""One box's converge over SSH: read, back up, write the changed files, reload, gate, restore.

The backup on the box (see `fatctl.remote.commands.converge`) is the record of what this rollout
changed there: a resumed step takes the changed set from it (so services are reloaded even when
the kill landed between the writes and the reloads), and rollback and abort restore from it.
Like `rollout.upgrade`, this never touches the database; it returns a `HostOutcome`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cloud_init.files import RenderedFile
from fatctl.domain import StepPhase
from fatctl.remote.commands import converge as cmd
from fatctl.remote.runner import Pool
from fatctl.remote.target import Target
from fatctl.services.converge import diff
from fatctl.services.rollout.gate import Gate, StepFailed, Unreachable, run_checked
from fatctl.services.rollout.upgrade import HostOutcome


@dataclass
class HostConverge:
    """Converge one box to `files` (None for abort, which only restores)."""

    pool: Pool
    layout: cmd.ConvergeLayout
    gate: Gate
    rollout_id: int
    files: dict[str, RenderedFile] | None = None
    keep_backups: int = 3
    notes: list[str] = field(default_factory=list)
    refuse: str = ""  # set when the step must not apply (its configuration moved on)

    def read(self, target: Target) -> dict[str, diff.BoxFile | None]:
        assert self.files is not None
        paths = list(self.files)
        done = run_checked(self.pool, target, cmd.read_files(self.layout, paths), "reading files")
        try:
            return diff.parse_read(paths, done.stdout)
        except ValueError as exc:
            raise StepFailed(f"reading files failed: {exc}") from None

    def touched(self, target: Target) -> list[str]:
        """The paths this rollout backed up on the box (empty: it changed nothing there)."""
        done = run_checked(
            self.pool, target, cmd.read_manifest(self.layout, self.rollout_id), "reading backup"
        )
        return [path for path, _ in cmd.parse_manifest(done.stdout)]

    def apply(
        self, target: Target, record_from: Callable[[str], None], resumed_from: str
    ) -> HostOutcome:
        """The whole step; `record_from` stores the box's config digest before any write."""
        if self.refuse:
            return self.put_back(target, resumed_from, self.refuse)
        assert self.files is not None
        previous = resumed_from
        wrote = False
        try:
            have = self.read(target)
            touched = self.touched(target)
            changed = [c.path for c in diff.changes(self.files, have, self.layout.owners)]
            if not changed and not touched:
                return HostOutcome(StepPhase.SUCCEEDED, diff.box_digest(have), notes=("unchanged",))
            if not touched:
                previous = diff.box_digest(have)
                record_from(previous)
                run_checked(
                    self.pool, target, cmd.backup(self.layout, self.rollout_id, changed), "backup"
                )
                touched = changed
            wrote = True
            for path in changed:
                self.write(target, self.files[path])
            run_checked(self.pool, target, self.reload_command(touched), "reload")
            why = self.gate.wait(target)
            if why is not None:
                return self.rollback(target, previous, touched, why)
            self.prune(target)
            return HostOutcome(
                StepPhase.SUCCEEDED, previous, notes=tuple(self.notes + self.gate.notes)
            )
        except Unreachable as exc:
            return HostOutcome(StepPhase.UNREACHABLE, previous, str(exc))
        except StepFailed as exc:
            if not wrote:
                return HostOutcome(StepPhase.FAILED, previous, str(exc))
            return self.rollback(target, previous, touched, str(exc))

    def write(self, target: Target, f: RenderedFile) -> None:
        command = cmd.write_file(self.layout, f.path, f.mode, f.owner)
        run_checked(self.pool, target, command, f"writing {f.path}", stdin=f.content.encode())

    def reload_command(self, paths: list[str]) -> str:
        return cmd.apply_actions(self.layout, cmd.actions_for(paths))

    def rollback(self, target: Target, previous: str, touched: list[str], why: str) -> HostOutcome:
        """Put the previous files back, reload the same services, and require health again."""
        try:
            run_checked(self.pool, target, cmd.restore(self.layout, self.rollout_id), "restore")
            run_checked(self.pool, target, self.reload_command(touched), "reload after restore")
            back = self.gate.wait(target)
        except (StepFailed, Unreachable) as exc:
            return HostOutcome(StepPhase.FAILED, previous, f"{why}; rollback failed: {exc}")
        if back is not None:
            return HostOutcome(
                StepPhase.FAILED, previous, f"{why}; unhealthy after rollback: {back}"
            )
        return HostOutcome(StepPhase.ROLLED_BACK, previous, why)

    def roll_back_to(self, target: Target, previous: str) -> HostOutcome:
        """Abort: restore this rollout's backup, if the box has one."""
        return self.put_back(target, previous, "aborted by operator")

    def put_back(self, target: Target, previous: str, why: str) -> HostOutcome:
        """Restore this rollout's backup if the box has one (a half-done step leaves one)."""
        try:
            touched = self.touched(target)
        except (StepFailed, Unreachable) as exc:
            return HostOutcome(StepPhase.UNREACHABLE, previous, f"{why}; {exc}")
        if not touched:
            phase = StepPhase.ROLLED_BACK if why.startswith("aborted") else StepPhase.FAILED
            return HostOutcome(phase, previous, f"{why} (no file had changed)")
        return self.rollback(target, previous, touched, why)

    def prune(self, target: Target) -> None:
        """Best effort: old backups that fail to go are a note, not a failed step."""
        try:
            run_checked(
                self.pool, target, cmd.prune_backups(self.layout, self.keep_backups), "prune"
            )
        except (StepFailed, Unreachable) as exc:
            self.notes.append(str(exc))
