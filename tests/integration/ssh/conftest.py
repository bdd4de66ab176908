"""The SSH tests' fixtures live in `tests.fixtures.sshd`; re-exported here for older imports."""

from tests.fixtures.sshd import Fleet, fleet_db

__all__ = ["Fleet", "fleet_db"]
