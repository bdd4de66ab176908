"""Asynchronous actions. A request records the action (`running`) plus a persisted pending job
naming an operation from `ops.OPS`; a worker thread waits the action delay, runs the operation's
side effect (the box driver, outside the store lock, since booting a box takes seconds), then
commits its state change and marks the action `success` or `error`. Pending jobs survive a
restart of the emulator and are resumed when it starts again."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fatctl.sandbox.apiemu.store import now_iso
from fatctl.sandbox.hetzner.state import HetznerState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Op:
    run: Callable[[HetznerState, dict[str, Any]], None]
    finish: Callable[[HetznerState, dict[str, Any], bool], None]


def _nothing(state: HetznerState, args: dict[str, Any]) -> None:
    return None


def _no_finish(state: HetznerState, args: dict[str, Any], ok: bool) -> None:
    return None


NOOP = Op(_nothing, _no_finish)


def action_doc(action_id: int, command: str, resources: Sequence[dict[str, Any]]) -> dict:
    return {
        "id": action_id,
        "command": command,
        "status": "running",
        "progress": 0,
        "started": now_iso(),
        "finished": None,
        "resources": list(resources),
        "error": None,
    }


class ActionRunner:
    def __init__(self, state: HetznerState, ops: dict[str, Op], workers: int = 32) -> None:
        self.state, self.ops = state, ops
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hc-action")

    def submit(
        self,
        command: str,
        resources: Sequence[dict[str, Any]],
        op: str = "noop",
        args: dict[str, Any] | None = None,
        extra_commands: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Record the action (and any follow-up actions that finish with it, like the
        `start_server` after `create_server`) and schedule the work. Returns the action docs."""
        store = self.state.store
        with store.tx():
            docs = [
                store.put("action", action_doc(self.state.new_id("action"), cmd, resources))
                for cmd in (command, *extra_commands)
            ]
            store.put(
                "pending",
                {
                    "id": docs[0]["id"],
                    "command": command,
                    "op": op,
                    "args": args or {},
                    "resources": list(resources),
                    "also": [d["id"] for d in docs[1:]],
                },
            )
        self._pool.submit(self._work, docs[0]["id"])
        return docs

    def resume(self) -> int:
        pending = self.state.store.all("pending")
        for job in pending:
            self._pool.submit(self._work, job["id"])
        return len(pending)

    def stop(self) -> None:
        self.state.shutting_down.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _work(self, action_id: int) -> None:
        try:
            self._execute(action_id)
        except Exception:  # a worker must never die silently: the action would hang forever
            log.exception("action %s crashed", action_id)

    def _execute(self, action_id: int) -> None:
        state = self.state
        job = state.store.get("pending", action_id)
        if job is None or state.shutting_down.wait(state.action_delay(job.get("command"))):
            return  # done elsewhere, or the emulator is stopping (the job resumes next start)
        job = state.store.get("pending", action_id)
        if job is None:
            return
        op = self.ops[job["op"]]
        error = None
        if state.faults.action_fails():
            error = {"code": "action_failed", "message": "injected action failure"}
        else:
            try:
                op.run(state, job["args"])
            except Exception as exc:
                error = {
                    "code": "action_failed",
                    "message": f"box driver failed: {type(exc).__name__}: {exc}",
                }
        if state.shutting_down.is_set():
            return
        with state.store.tx():
            op.finish(state, job["args"], error is None)
            for aid in (action_id, *job["also"]):
                self._finalize(aid, error)
            state.store.delete("pending", action_id)

    def _finalize(self, action_id: int, error: dict[str, str] | None) -> None:
        doc = self.state.store.get("action", action_id)
        if doc is None:
            return
        doc.update(
            status="error" if error else "success", progress=100, finished=now_iso(), error=error
        )
        self.state.store.put("action", doc)
