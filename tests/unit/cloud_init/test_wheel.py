"""The wheel carries cloud_init/ and templates/, and renders from its own copy of them.

The wheel is built from a copy of the sources (nothing is written into the checkout), installed
into a fresh venv that sees site-packages only for the dependencies, and asked to render: the
result must come from the venv's files and equal what the checkout renders.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from cloud_init.render import render_user_data
from cloud_init.specjson import spec_to_dict
from fatctl.domain import ServicePlan
from tests.unit.cloud_init.variants import Variant, make_spec

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("pyproject.toml", "fatctl", "cloud_init", "templates", "stacks", "migrations")
PROBE = """
import json, sys
import cloud_init, templates
from cloud_init.render import render_user_data
from cloud_init.specjson import spec_from_json
spec = spec_from_json(open(sys.argv[1]).read())
print(json.dumps({"cloud_init": cloud_init.__file__, "templates": templates.__file__,
                  "user_data": render_user_data(spec)}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (built,) = (work / "dist").glob("fatctl-*.whl")
    return built


def test_wheel_lists_every_template(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tree = Path(str(resources.files("templates")))
    expected = {f"templates/{p.relative_to(tree)}" for p in tree.rglob("*.j2")}
    assert expected and expected <= names
    for module in ("render", "validate", "packages", "files", "checks"):
        assert f"cloud_init/{module}.py" in names


def test_installed_wheel_renders_from_its_own_templates(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
    )
    spec = make_spec(Variant("ubuntu-24.04", True, ServicePlan.BYOK, True))
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec_to_dict(spec)))
    probe = subprocess.run(
        [str(python), "-c", PROBE, str(spec_path)], cwd=tmp_path, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    site = str(venv / "lib")
    assert result["cloud_init"].startswith(site) and result["templates"].startswith(site)
    assert result["user_data"] == render_user_data(spec)
