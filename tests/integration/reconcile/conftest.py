"""The provision tests' control plane (emulators + migrated DB + key ring), reused here."""

from tests.integration.provision.conftest import plane

__all__ = ["plane"]
