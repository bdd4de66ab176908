"""The gateway unit of every rendered box, scored by systemd's own `systemd-analyze security`
(offline, on the rendered file): at most 3.0, "OK". The figure is printed for the record; the
sandbox it describes is exercised on a real box by the serving e2e, which runs the platform
skills' commands under the same properties.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cloud_init import layout as L
from cloud_init.render import render_files
from tests.unit.cloud_init.variants import VARIANTS, Variant, make_spec

MAX_EXPOSURE = 3.0


def exposure(unit: Path) -> float:
    """systemd-analyze's overall exposure level for a unit file, 0.0 (locked) to 10.0."""
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", out.stdout)
    assert found, out.stdout + out.stderr
    return float(found.group(1))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_gateway_unit_exposure_is_ok(variant: Variant, tmp_path: Path, capsys) -> None:
    unit = tmp_path / L.GATEWAY_UNIT
    unit.write_text(
        render_files(make_spec(variant))[f"/etc/systemd/system/{L.GATEWAY_UNIT}"].content
    )
    score = exposure(unit)
    with capsys.disabled():
        print(f"\n{variant.id}: {L.GATEWAY_UNIT} exposure {score}")
    assert score <= MAX_EXPOSURE
