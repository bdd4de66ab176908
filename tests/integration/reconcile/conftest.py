"""Fixtures reused from other suites: the provision tests' control plane (emulators, migrated
database, key ring) and the rollout tests' real sshd boxes running a tiny gateway."""

from tests.integration.provision.conftest import plane
from tests.integration.rollout.conftest import box_fleet

__all__ = ["box_fleet", "plane"]
