"""The engine factory: explicit choices, auto-detection, bad names, and the protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from fatctl.config import Settings
from fatctl.errors import BadInput
from fatctl.infra import make_engine
from fatctl.infra.engine import InfraEngine
from fatctl.sensitive import Sensitive


def settings(tmp_path: Path, engine: str = "auto") -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url="sqlite://",
        hcloud_token=Sensitive("t"),
        engine=engine,
        hcloud_endpoint="http://127.0.0.1:9/v1",
    )


def test_factory_choices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi binary anywhere
    assert make_engine(settings(tmp_path)).name == "hcloud"
    assert make_engine(settings(tmp_path), "pulumi").name == "pulumi"
    assert make_engine(settings(tmp_path, engine="pulumi")).name == "pulumi"
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert make_engine(settings(tmp_path)).name == "pulumi"
    for engine in (
        make_engine(settings(tmp_path), "hcloud"),
        make_engine(settings(tmp_path), "pulumi"),
    ):
        assert isinstance(engine, InfraEngine)
    with pytest.raises(BadInput, match="unknown engine 'terraform'"):
        make_engine(settings(tmp_path), "terraform")


def test_timing_from_settings(tmp_path: Path) -> None:
    from dataclasses import replace

    from fatctl.errors import ConfigError
    from fatctl.pacing.timing import Timing

    assert Timing.from_settings("3", "0.5") == Timing(poll_interval=0.5, retry_attempts=3)
    engine = make_engine(replace(settings(tmp_path), api_retries="2", poll_interval="0"), "hcloud")
    assert engine.h.timing.retry_attempts == 2  # type: ignore[attr-defined]
    for bad in (("x", "1"), ("0", "1"), ("3", "-1")):
        with pytest.raises(ConfigError):
            Timing.from_settings(*bad)
