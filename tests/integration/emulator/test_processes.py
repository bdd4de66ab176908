"""Emulators and moto as separate processes, found again and stopped through their state
dirs (what `fatctl sandbox up/down/status` builds on)."""

from __future__ import annotations

import cloudflare
from hcloud import Client

from fatctl.sandbox.apiemu import pids
from fatctl.sandbox.apiemu.spawn import find_emulator, spawn_emulator, stop_emulator
from fatctl.sandbox.s3 import s3_status, start_s3, stop_s3


def test_spawn_find_and_stop_both_emulators(tmp_path):
    het = spawn_emulator("hetzner", tmp_path, "--action-delay", "0.01")
    cfe = spawn_emulator("cloudflare", tmp_path, "--zone", "sandbox.test")
    try:
        hc = Client(token=het.info["token"], api_endpoint=het.info["url"])
        assert len(hc.server_types.get_all()) == 4
        cf = cloudflare.Cloudflare(
            api_token=cfe.info["token"], base_url=cfe.info["url"], max_retries=0
        )
        assert [z.name for z in cf.zones.list()] == ["sandbox.test"]
        assert find_emulator("hetzner", tmp_path).pid == het.pid
    finally:
        assert stop_emulator("hetzner", tmp_path) is True
        assert cfe.stop() is True
    assert not pids.runs(het.pid, "fatctl.sandbox.hetzner")
    assert find_emulator("hetzner", tmp_path) is None
    assert stop_emulator("cloudflare", tmp_path) is False  # nothing left to stop


def test_s3_server_lifecycle(tmp_path):
    first = start_s3(tmp_path)
    try:
        assert start_s3(tmp_path) == first  # one per state dir: found by its pid file
        assert s3_status(tmp_path).url == first.url
    finally:
        assert stop_s3(tmp_path) is True
    assert s3_status(tmp_path) is None and not pids.runs(first.pid, "fatctl.sandbox.s3_server")
    assert stop_s3(tmp_path) is False
