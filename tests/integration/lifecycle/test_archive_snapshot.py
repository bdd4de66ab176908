"""`fatctl archive` of an agent suspended with `--snapshot` deletes that snapshot (Hetzner bills
it per GB and month; an archive keeps the backup, not a disk image), records it in the op, and
converges when killed around that step or when the snapshot is already gone. Run on the Hetzner
and Cloudflare emulators, no box.

Hetzner's documentation, which the emulator follows (`DELETE /images/{id}`): "Deletes an Image.
Only Images of type `snapshot` and `backup` can be deleted." (204 No Content); an id that does
not exist is `404 not_found`; `GET /images?type=snapshot&label_selector=...` lists by label.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from fatctl.infra.hcloud.client import Hcloud
from fatctl.pacing.timing import Timing
from fatctl.services.lifecycle.archive import archive
from fatctl.services.lifecycle.ops import ops_of
from fatctl.services.lifecycle.suspend import suspend
from tests.integration.lifecycle.test_suspend_archive import (
    Killed,
    audit,
    context,
    kill_at,
    provisioned,
)
from tests.integration.provision.conftest import Plane


def snapshots(plane: Plane) -> list[dict[str, Any]]:
    return [i for i in plane.hetzner.inventory()["images"] if i["type"] == "snapshot"]


def suspended_with_snapshot(plane: Plane, name: str) -> str:
    provisioned(plane, name)
    out = suspend(context(plane), name, snapshot=True, no_backup=True)
    assert [str(i["id"]) for i in snapshots(plane)] == [out.detail["snapshot_id"]]
    return str(out.detail["snapshot_id"])


def test_archive_deletes_the_suspends_snapshot_and_records_it(plane: Plane) -> None:
    image = suspended_with_snapshot(plane, "frozen")
    provisioned(plane, "neighbour")
    other = suspend(context(plane), "neighbour", snapshot=True, no_backup=True)
    out = archive(context(plane), "frozen")
    assert out.state == "archived"
    # Only the archived agent's snapshot goes; the other suspended agent keeps its own.
    assert [str(i["id"]) for i in snapshots(plane)] == [other.detail["snapshot_id"]]
    [op] = [o for o in ops_of(plane.db, "frozen") if o.kind == "archive"]
    assert op.params["snapshots_deleted"] == image
    assert ("archive.snapshots", "ok") in audit(plane, "frozen", "archive.")


def test_archive_without_a_snapshot_deletes_nothing(plane: Plane) -> None:
    provisioned(plane, "plain")
    suspend(context(plane), "plain", no_backup=True)
    archive(context(plane), "plain")
    [op] = [o for o in ops_of(plane.db, "plain") if o.kind == "archive"]
    assert op.params["snapshots_deleted"] == "none"


@pytest.mark.parametrize("event", ["step.start:snapshots", "step.done:snapshots"])
def test_an_archive_killed_around_the_snapshot_step_converges(plane: Plane, event: str) -> None:
    suspended_with_snapshot(plane, "crashy")
    with pytest.raises(Killed):
        archive(context(plane, emit=kill_at(event)), "crashy")
    out = archive(context(plane), "crashy")
    assert out.state == "archived"
    assert snapshots(plane) == []


def test_a_snapshot_deleted_by_hand_meanwhile_is_no_error(plane: Plane) -> None:
    image = suspended_with_snapshot(plane, "handled")
    # The operator deletes it at Hetzner between the listing and fatctl's delete: the delete's
    # 404 is the outcome wanted.
    h = Hcloud(plane.settings, Timing.instant(), sleep=lambda s: None)
    real_get_all = h.client.images.get_all

    def listed_then_deleted(**kw: Any) -> list[Any]:
        found = real_get_all(**kw)
        for i in found:
            h.client.images.delete(i)
        return found

    infra = plane.infra()
    infra.hcloud_client = lambda: h  # type: ignore[method-assign]
    h.client.images.get_all = listed_then_deleted  # type: ignore[method-assign]
    out = archive(replace(context(plane), infra=infra), "handled")
    assert out.state == "archived"
    [op] = [o for o in ops_of(plane.db, "handled") if o.kind == "archive"]
    assert (op.params["snapshots_deleted"], op.params["already_gone"]) == ("none", image)
    assert snapshots(plane) == []
