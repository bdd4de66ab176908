"""Provisioning and rebuilds boot the newest golden image recorded for the agent's runtime
(chosen from the database: no extra Hetzner call), else the stock image with the install path."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloud_init.render import render_user_data
from fatctl.config import Settings
from fatctl.infra.hcloud.images import GoldenImages
from fatctl.pacing.poll import Backoff
from fatctl.pacing.timing import Timing
from fatctl.services.common.specs import build_spec
from fatctl.services.image.build import BuildOptions, build_golden, mark_gone, record_build
from fatctl.services.image.recipe import GoldenRecipe
from fatctl.state import repo
from fatctl.state.db import make_engine, session_scope
from fatctl.state.models import Agent, GoldenImage
from tests.integration.engines.conftest import OP_KEY, emulator_settings
from tests.integration.engines.test_infra_cli import fatctl
from tests.integration.image.test_image_build_api import Builders

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _golden(image_id: str, age_days: int, **over: Any) -> GoldenImage:
    fields: dict[str, Any] = dict(runtime_version="2026.9.6", node_version="24.21.0",
                                  base_image="debian-12", architecture="x86", builder="b",
                                  image_id=image_id, state="available", actor="t",
                                  created_at=T0 - timedelta(days=age_days))  # fmt: skip
    fields.update(over)
    return GoldenImage(**fields)


def test_spec_picks_the_newest_fitting_golden_image(migrated_engine: Any) -> None:
    settings = Settings(data_dir=Path("/nonexistent"), database_url="sqlite://")
    with session_scope(migrated_engine) as session:
        owner = repo.get_or_create_owner(session, "a@example.com", "managed")
        session.add(Agent(name="alice", agent_id="id-alice", owner_id=owner.id or 0,
                          state="requested", server_type="cx23", location="fsn1",
                          image="debian-12", runtime_version="2026.9.6"))  # fmt: skip
        session.flush()
        agent = repo.get_agent(session, "alice")
        stock = build_spec(session, agent, settings, golden=True)
        assert (stock.image, stock.golden_image) == ("debian-12", False)
        session.add_all([
            _golden("101", 5),
            _golden("102", 1),  # the newest that fits
            _golden("103", 0, runtime_version="2026.9.5"),
            _golden("104", 0, architecture="arm"),
            _golden("105", 0, base_image="debian-13"),
            _golden("106", 0, state="failed"),
            _golden("107", 0, state="gone"),
            _golden("108", 0, node_version="24.20.0"),
        ])  # fmt: skip
        session.flush()
        golden = build_spec(session, agent, settings, golden=True)
        assert (golden.image, golden.golden_image) == ("102", True)
        # Converge, render and plan describe the box as configured: no golden by default.
        assert build_spec(session, agent, settings).image == "debian-12"
        agent.server_type = "cax11"
        assert build_spec(session, agent, settings, golden=True).image == "104"
    # A golden spec's user-data installs nothing and checks the runtime is there.
    text = render_user_data(replace(golden, operator_keys=(OP_KEY,)))
    assert "packages:" not in text and "golden image lacks openclaw 2026.9.6" in text


def test_provision_and_rebuild_use_the_golden_image(
    env: dict[str, str],
    quick_emulator: Any,
    cloudflare_emulator: Any,
    tmp_path: Path,
) -> None:
    cf = cloudflare_emulator
    env = {**env, "CLOUDFLARE_API_TOKEN": cf.token, "CLOUDFLARE_BASE_URL": cf.url,
           "FATCTL_DOMAIN": "sandbox.test"}  # fmt: skip
    assert fatctl(env, "keys", "add", "--operator", "--key", OP_KEY, "--no-push").returncode == 0

    def provision(name: str) -> None:
        proc = fatctl(env, "provision", name, "--owner", f"{name}@example.com", "--no-box",
                      "--json")  # fmt: skip
        assert proc.returncode == 0, proc.stderr

    def image_of(name: str) -> int:
        (server,) = [s for s in quick_emulator.inventory()["servers"] if s["name"] == name]
        return int(server["image"])

    provision("alpha")
    stock_id = image_of("alpha")

    # A golden image built (API side) and recorded in the control plane's database.
    settings = emulator_settings(quick_emulator, tmp_path)
    cloud = GoldenImages(settings, timing=Timing.instant())
    recipe = GoldenRecipe("2026.9.6", "24.21.0")
    opts = BuildOptions(operator_key=OP_KEY, key_file=None, backoff=Backoff.instant(), stamp="g")
    db = make_engine(env["FATCTL_DATABASE_URL"])
    built = record_build(
        db,
        "t",
        recipe,
        "g",
        lambda: build_golden(
            cloud, Builders(quick_emulator).connect, recipe, opts, lambda kind, **f: None
        ),
    )
    assert int(built.image_id) != stock_id

    quick_emulator.reset_stats()
    provision("beta")
    assert image_of("beta") == int(built.image_id)
    assert not any(k.startswith("GET /v1/images") for k in quick_emulator.stats()["calls"])

    rebuilt = fatctl(env, "rebuild", "alpha", "--yes", "--no-snapshot", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert image_of("alpha") == int(built.image_id)

    # Deleted at Hetzner: `image list` marks it gone, and provisioning goes back to stock.
    listed = json.loads(fatctl(env, "image", "list", "--json").stdout)
    assert [i["image_id"] for i in listed["images"]] == [built.image_id]
    cloud.h.client.images.get_by_id(int(built.image_id)).delete()
    listed = json.loads(fatctl(env, "image", "list", "--json").stdout)
    assert listed == {"images": [], "marked_gone": [built.image_id]}
    assert mark_gone(db, set()) == []  # nothing left to mark
    db.dispose()
    provision("gamma")
    assert image_of("gamma") == stock_id
