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
