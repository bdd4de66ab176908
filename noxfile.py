"""nox sessions: `tests` (the suite), `lint` (ruff + mypy), `demo` (the sandbox walk-through),
`floors` (the cloud SDK tests at the oldest SDK versions pyproject.toml allows).

The tests need root-installed system packages and PostgreSQL: `scripts/test.sh` prepares those
and is what CI runs; this session reuses the machine's packages in a fresh virtualenv.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]


@nox.session(venv_params=["--system-site-packages"])
def tests(session: nox.Session) -> None:
    session.install("-c", ".ci/constraints.txt", "-e", ".[test]")
    session.run("pytest", "-ra", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-c", ".ci/constraints.txt", "-e", ".[test]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


# The cloud SDKs whose floors in pyproject.toml are promises: `floors` installs exactly those.
BOUNDED_SDKS = ("hcloud", "cloudflare", "pulumi", "pulumi-hcloud")
# The tests that drive those SDKs' calls against the emulators and Pulumi's mocks. Not
# tests/contract: it holds the emulators to the pinned cloudflare-python's response models,
# which an older SDK describes less completely (4.2's ARecord has no id).
SDK_TESTS = (
    "tests/stacks",
    "tests/unit/infra",
    "tests/integration/emulator",
    "tests/integration/engines",
)


def _floor_pins() -> list[str]:
    import tomllib

    from packaging.requirements import Requirement

    with open("pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    pins = []
    for dep in map(Requirement, deps):
        floors = [s.version for s in dep.specifier if s.operator == ">="]
        if dep.name in BOUNDED_SDKS and floors:
            pins.append(f"{dep.name}=={floors[0]}")
    return pins


@nox.session(venv_params=["--system-site-packages"])
def floors(session: nox.Session) -> None:
    session.install("-c", ".ci/constraints.txt", "-e", ".[test]")
    session.install(*_floor_pins())  # with their own dependencies (old pulumi-hcloud: parver)
    session.run("pytest", "-q", *(session.posargs or SDK_TESTS))


@nox.session(python=False)
def demo(session: nox.Session) -> None:
    session.run("bash", "scripts/demo.sh", *session.posargs, external=True)
