"""nox sessions: `tests` (the suite), `lint` (ruff + mypy), `demo` (the sandbox walk-through).

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


@nox.session(python=False)
def demo(session: nox.Session) -> None:
    session.run("bash", "scripts/demo.sh", *session.posargs, external=True)
