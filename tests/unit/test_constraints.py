"""The pins CI and both README commands install with (`pip install -c .ci/constraints.txt`)
cover every distribution fatctl[test] needs, at the version installed here: a dependency added
to pyproject.toml without re-running scripts/constraints.py fails this test."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load_generator():  # scripts/ is not a package: load the generator by path
    spec = importlib.util.spec_from_file_location("constraints", ROOT / "scripts/constraints.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_needed_distribution_is_pinned_at_its_installed_version() -> None:
    generator = _load_generator()
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / ".ci/constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    needed = generator.pinned()
    assert "hcloud" in needed and "pytest" in needed and "psycopg" in needed
    unpinned = sorted(set(needed) - set(pins))
    assert not unpinned, f"run scripts/constraints.py: not pinned: {unpinned}"
    drifted = {n: (pins[n], v) for n, v in needed.items() if pins[n] != v}
    assert not drifted, f"installed versions differ from the pins: {drifted}"


def test_the_install_commands_use_the_pins() -> None:
    for script in ("scripts/demo.sh", "scripts/test.sh", "noxfile.py"):
        text = (ROOT / script).read_text()
        installs = re.findall(r".*install.*\[test\].*", text)
        assert installs and all("constraints.txt" in line for line in installs), script


# The cloud SDKs change call shapes between majors (cloudflare 3 -> 4 changed every list filter)
# and add what fatctl calls within them: each needs a floor where its calls exist and a ceiling
# below the next major, and the nox `floors` session runs the SDK tests at those floors.
BOUNDED = ("hcloud", "cloudflare", "pulumi", "pulumi-hcloud")


def test_the_cloud_sdks_have_a_floor_and_a_ceiling() -> None:
    import tomllib

    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    specs = {Requirement(d).name: Requirement(d).specifier for d in deps}
    for name in BOUNDED:
        operators = {s.operator for s in specs[name]}
        assert {">=", "<"} <= operators, f"{name} needs a floor and a ceiling: {specs[name]}"


def test_the_floors_session_installs_the_floors() -> None:
    """The nox `floors` session reads the floors from pyproject.toml, so they cannot drift."""
    noxfile = (ROOT / "noxfile.py").read_text()
    assert "def floors(" in noxfile and "BOUNDED_SDKS" in noxfile
    for name in BOUNDED:
        assert f'"{name}"' in noxfile
