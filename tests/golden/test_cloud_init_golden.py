"""Golden files for rendered user-data: any change to what a box gets shows up as a diff.

Set FATCTL_UPDATE_GOLDEN=1 to rewrite the files after an intended change, then review the diff
in git like any other code change.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from cloud_init import layout as L
from cloud_init.render import render_files, render_install_script, render_user_data
from fatctl.domain import ServicePlan
from tests.unit.cloud_init.variants import Variant, make_spec

DATA = Path(__file__).parent / "data" / "cloud_init"
UPDATE = os.environ.get("FATCTL_UPDATE_GOLDEN") == "1"

GOLDEN_VARIANTS = [
    Variant("debian-12", False, ServicePlan.MANAGED, False),
    Variant("debian-12", True, ServicePlan.MANAGED, False, r2=False),
    Variant("debian-13", True, ServicePlan.BYOK, True),
    Variant("debian-13", False, ServicePlan.MANAGED, True),
    Variant("ubuntu-24.04", False, ServicePlan.BYOK, True, r2=False),
    Variant("ubuntu-24.04", True, ServicePlan.MANAGED, False),
]


def check_golden(name: str, actual: str, directory: Path = DATA, update: bool = UPDATE) -> None:
    path = directory / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no golden file {path.name}; run with FATCTL_UPDATE_GOLDEN=1 to create it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "golden", "rendered", lineterm=""
        )
        shown = "\n".join(list(diff)[:80])
        pytest.fail(f"{name} differs (FATCTL_UPDATE_GOLDEN=1 accepts the change):\n{shown}")


@pytest.mark.parametrize("variant", GOLDEN_VARIANTS, ids=lambda v: v.id)
def test_user_data_matches_golden(variant: Variant) -> None:
    check_golden(f"{variant.id}.yaml", render_user_data(make_spec(variant)))


def test_install_script_matches_golden() -> None:
    check_golden("install-runtime.sh", render_install_script("2026.9.6", "24.21.0"))


def test_fat_health_matches_golden() -> None:
    """fat-health arrives over SSH after boot, so no user-data pins it: its own golden file, for
    the variant with every channel."""
    spec = make_spec(Variant("debian-13", True, ServicePlan.BYOK, True))
    check_golden("fat-health.sh", render_files(spec)[L.HEALTH_COMMAND].content)


@pytest.mark.parametrize(
    ("golden", "path"),
    [("fat-backup.sh", L.BACKUP_SCRIPT), ("fat-backup-policy.conf", L.BACKUP_POLICY),
     ("fat-backup.service", f"/etc/systemd/system/{L.BACKUP_UNIT}"),
     ("fat-backup.timer", f"/etc/systemd/system/{L.BACKUP_TIMER}")],
)  # fmt: skip
def test_state_backup_files_match_golden(golden: str, path: str) -> None:
    """The state backup's files arrive over SSH after boot, so no user-data pins them."""
    spec = make_spec(Variant("debian-12", False, ServicePlan.MANAGED, False))
    check_golden(golden, render_files(spec)[path].content)


def test_golden_check_detects_a_change(tmp_path: Path) -> None:
    """The comparison itself can fail: a one-character change is reported with a diff."""
    (tmp_path / "x.yaml").write_text("a: 1\n")
    with pytest.raises(pytest.fail.Exception, match=r"\+a: 2"):
        check_golden("x.yaml", "a: 2\n", tmp_path, update=False)
    with pytest.raises(pytest.fail.Exception, match="no golden file"):
        check_golden("missing.yaml", "a: 2\n", tmp_path, update=False)
