"""Not collected on its own (no `test_` prefix): `test_sigterm_cleanup.py` runs it in a child
pytest and kills that pytest with SIGTERM while this test holds a real sshd fleet, the Hetzner
API emulator and a booted nspawn box."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.fixtures.boxes import box_address

USER_DATA = "#cloud-config\nhostname: sigterm\n"


def test_hold_everything_until_killed(sshd_hosts, hetzner_emulator, box_driver) -> None:
    sshd_hosts(2)
    server_id, ipv4, ipv6 = box_address(int(os.environ["FATCTL_SIGTERM_BOX"]))
    box_driver.create(server_id, "sigterm", ipv4, ipv6, USER_DATA)
    box_driver.box(server_id).wait_booted(180)
    Path(os.environ["FATCTL_SIGTERM_READY"]).write_text("ready")
    time.sleep(600)
