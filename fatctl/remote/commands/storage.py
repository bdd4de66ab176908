"""The box's R2 credentials: what `creds rotate` runs once the new env file is delivered."""

from __future__ import annotations

from cloud_init import layout as L
from fatctl.remote.commands.services import systemctl
from fatctl.remote.commands.shell import run


def take_r2_credentials() -> str:
    """Check that the delivered credentials parse, with the very script rclone's SDK will run
    within `R2_CREDENTIALS_TTL_S` (its output, the secret keys, goes nowhere); the running mount
    and the gateway are left alone. A box whose files predate that script (not yet converged)
    still takes its keys from rclone's environment, so there the mount is restarted as before.
    """
    check = f"{run([L.R2_CREDENTIALS_SCRIPT])} >/dev/null"
    restart = systemctl("restart", L.DATA_UNIT)
    return f"if [ -x {L.R2_CREDENTIALS_SCRIPT} ]; then {check}; else {restart}; fi"
