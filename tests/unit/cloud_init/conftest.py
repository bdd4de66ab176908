"""Fixtures for the cloud-init tests: a real ed25519 host key, shared by the whole session."""

from __future__ import annotations

import shutil

import pytest

from fatctl.domain import HostKeyPair
from tests.unit.cloud_init.variants import real_host_key


@pytest.fixture(scope="session")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> HostKeyPair:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is needed (Debian package openssh-client)")
    return real_host_key(tmp_path_factory.mktemp("hostkey"))
