"""Read the example CI pipelines in docs/ci: every shell script in them, every `fatctl ...`
call in those scripts (as argv), and a check of one call against fatctl's real click tree."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import yaml

DOCS_CI = Path(__file__).resolve().parents[3] / "docs" / "ci"
GITHUB = sorted((DOCS_CI / "github").glob("*.yml"))
GITLAB = sorted((DOCS_CI / "gitlab").glob("*.yml"))
WORKFLOWS = GITHUB + GITLAB

# Where a new shell command may begin: after these tokens (or at the start of a line).
_COMMAND_START = {";", "&&", "||", "|", "(", "!", "then", "do", "else", "if", "while", "time"}
# Tokens that end a command's argv (shlex's punctuation, redirections, a pipe).
_ARGV_END = {";", "&&", "||", "|", "&", ")", ">", ">>", "<", "2>", "2>&1", "|&"}
_GITLAB_SCRIPTS = ("before_script", "script", "after_script")


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    return doc


def scripts(path: Path) -> Iterator[str]:
    """Every shell script of a workflow: GitHub steps' `run`, GitLab jobs' script lists."""
    doc = load(path)
    if path.parent.name == "github":
        for job in (doc.get("jobs") or {}).values():
            for step in job.get("steps") or []:
                if "run" in step:
                    yield str(step["run"])
        return
    for key, job in doc.items():
        if isinstance(job, dict) and (key == "default" or "script" in job):
            for section in _GITLAB_SCRIPTS:
                lines = job.get(section) or []
                yield from (str(line) for line in ([lines] if isinstance(lines, str) else lines))


def _logical_lines(script: str) -> Iterator[str]:
    """Lines with backslash continuations joined; comments dropped by shlex later."""
    pending = ""
    for raw in script.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def fatctl_calls(script: str) -> Iterator[list[str]]:
    """The argv after `fatctl` of every fatctl invocation in a shell script."""
    for line in _logical_lines(script):
        tokens = _tokens(line)
        for i, token in enumerate(tokens):
            if token != "fatctl" or (i > 0 and tokens[i - 1] not in _COMMAND_START):
                continue
            argv = []
            for arg in tokens[i + 1 :]:
                if arg in _ARGV_END or set(arg) <= set(";&|()<>"):
                    break
                argv.append(arg)
            yield argv


def check_call(root: click.Group, argv: list[str]) -> list[str]:
    """Problems with one `fatctl` argv: unknown command path or options the command lacks."""
    cmd: click.Command = root
    path = ["fatctl"]
    rest = list(argv)
    while isinstance(cmd, click.Group):
        if not rest or rest[0].startswith("-"):
            return [f"{' '.join(path)}: a subcommand is required"]
        name = rest.pop(0)
        found = cmd.commands.get(name)
        if found is None:
            return [f"{' '.join(path)}: no command {name!r}"]
        cmd, path = found, [*path, name]
    options = {
        o: p for p in cmd.params if isinstance(p, click.Option) for o in p.opts + p.secondary_opts
    }
    takes_args = any(isinstance(p, click.Argument) for p in cmd.params)
    problems = []
    while rest:
        token = rest.pop(0)
        if token == "--":
            break
        if not token.startswith("-"):
            if not takes_args:
                problems.append(f"{' '.join(path)}: takes no argument {token!r}")
            continue
        name, has_value = token.split("=", 1)[0], "=" in token
        param = options.get(name)
        if param is None:
            problems.append(f"{' '.join(path)}: no option {name}")
        elif not param.is_flag and not param.count and not has_value:
            if not rest or rest[0].startswith("--"):
                problems.append(f"{' '.join(path)}: option {name} needs a value")
            else:
                rest.pop(0)
    return problems


def env_names(path: Path) -> set[str]:
    """Names of the environment variables a workflow sets (workflow, job and step `env:`;
    GitLab `variables:`)."""
    doc = load(path)
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("env", "variables") and isinstance(value, dict):
                    names.update(str(k) for k in value)
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(doc)
    return names
