"""Fixtures of the infra CLI tests, reused: a fast Hetzner emulator and a CLI environment."""

from tests.integration.engines.test_infra_cli import env, quick_emulator  # noqa: F401
