"""Every refusal of a provision or a destroy comes before any write (issue 16): the agent is
not recorded, a recorded one keeps its state, and nothing is asked of Hetzner or Cloudflare.
The refusals are bad input (exit 2): no operator key, a missing setting a later step needs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fatctl.config import Settings
from fatctl.errors import FatctlError
from fatctl.pacing.poll import Backoff
from fatctl.services.agents.records import create_agent
from fatctl.services.provision.flow import Options, provision
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.provision.test_provision_flow import opts, request


def dump(plane: Any) -> str:
    """Every row of every table: equal dumps mean nothing was written."""
    with sqlite3.connect(plane.settings.database_url.split("///", 1)[1]) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return repr([(t, sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"')))) for t in tables])


def nothing_written(plane: Any, run: Callable[[], object]) -> FatctlError:
    """`run` fails as bad input, having written nothing anywhere."""
    before = dump(plane)
    plane.hetzner.reset_stats()
    plane.cloudflare.reset_stats()
    with pytest.raises(FatctlError) as err:
        run()
    assert dump(plane) == before, err.value.one_line()
    assert plane.hetzner.stats()["total"] == plane.cloudflare.stats()["total"] == 0
    assert err.value.exit_code == 2, err.value.one_line()
    return err.value


def refused(plane: Any, name: str, settings: Settings | None = None, **kw: Any) -> FatctlError:
    """The provision of `name` fails, having written nothing anywhere."""
    return nothing_written(plane, lambda: provision(
        plane.db, plane.ring, settings or plane.settings, plane.infra(), request(name), "t",
        kw.get("options") or opts()))  # fmt: skip


def test_no_operator_key_records_nothing(plane: Any) -> None:
    from fatctl.services.agents.keys import list_keys, revoke_key

    for key in list_keys(plane.db, agent=None):
        revoke_key(plane.db, fingerprint=key.fingerprint, agent=None, actor="t")
    assert "no operator keys" in refused(plane, "newbie").one_line()
    create_agent(plane.db, plane.ring, request("waiting"), "t")  # `agents create`, then provision
    assert "no operator keys" in refused(plane, "waiting").one_line()


@pytest.mark.parametrize(
    ("setting", "env"),
    [
        ("domain", "FATCTL_DOMAIN"),
        ("cloudflare_api_token", "CLOUDFLARE_API_TOKEN"),
        ("hcloud_token", "HCLOUD_TOKEN"),
    ],
)
def test_a_missing_setting_a_step_needs_is_refused_first(
    plane: Any, setting: str, env: str
) -> None:
    missing = replace(plane.settings, **{setting: None if "token" in setting else ""})
    assert env in refused(plane, "newbie", missing).one_line()


def test_box_step_settings_are_checked_before_the_box_exists(plane: Any) -> None:
    box = Options(backoff=Backoff.instant(), validate=False)  # box steps not skipped
    r2 = replace(plane.settings, r2_endpoint="http://127.0.0.1:9", r2_parent_access_key_id="")
    assert "FATCTL_R2_PARENT_ACCESS_KEY_ID" in refused(plane, "newbie", r2, options=box).one_line()
    jump = replace(plane.settings, ssh_jump="no-at-sign")
    assert "ssh_jump" in refused(plane, "newbie", jump, options=box).one_line()


def test_destroy_refuses_before_it_starts(plane: Any) -> None:
    from fatctl.services.provision.destroy import destroy

    provision(plane.db, plane.ring, plane.settings, plane.infra(), request("gone"), "t", opts())

    def destroying(settings: Settings, **kw: Any) -> Callable[[], object]:
        return lambda: destroy(plane.db, plane.ring, settings, plane.infra(), "gone", "t", **kw)

    no_dns = replace(plane.settings, cloudflare_api_token=None)
    assert "CLOUDFLARE_API_TOKEN" in nothing_written(plane, destroying(no_dns)).one_line()
    no_r2 = destroying(plane.settings, purge_data=True)
    assert "FATCTL_R2_ENDPOINT" in nothing_written(plane, no_r2).one_line()


def test_cli_provision_without_operator_keys_leaves_no_agent(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any
) -> None:
    from fatctl.secrets import generate_master_key

    env = fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path), FATCTL_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite'}",
        FATCTL_MASTER_KEY=generate_master_key(), FATCTL_ENGINE="hcloud",
        HCLOUD_TOKEN=hetzner_emulator.token, HCLOUD_ENDPOINT=hetzner_emulator.url,
        CLOUDFLARE_API_TOKEN=cloudflare_emulator.token, CLOUDFLARE_BASE_URL=cloudflare_emulator.url,
        FATCTL_DOMAIN="sandbox.test",
    )  # fmt: skip
    run_fatctl("db", "upgrade", env=env, timeout=120, check=0)
    proc = run_fatctl("provision", "newbie", "--owner", "a@example.com", "--no-box", env=env,
                      timeout=120, check=2)  # fmt: skip
    assert proc.stderr.count("\n") == 1 and "no operator keys" in proc.stderr
    listed = run_fatctl("agents", "list", "--json", env=env, timeout=60, check=0)
    assert json.loads(listed.stdout) == []
    assert hetzner_emulator.stats()["total"] == 0
