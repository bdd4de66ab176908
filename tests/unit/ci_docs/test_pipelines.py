"""The example pipelines in docs/ci call only fatctl commands and options that exist, and set
only environment variables that are fatctl settings (or the few the jobs themselves use)."""

from __future__ import annotations

import click
import pytest
import typer

from fatctl.cli.commands import build_app
from fatctl.config import SETTINGS
from tests.unit.ci_docs import pipelines as p

# Set by the jobs for their own steps (CI conventions, the GitLab notes token, the key secret).
JOB_VARIABLES = {
    "CI",
    "FATCTL_ACTOR",
    "GH_TOKEN",
    "PREVIEW_CODE",
    "PR_NUMBER",
    "FATCTL_OPERATOR_SSH_KEY",
}
SETTING_PREFIXES = ("FATCTL_", "HCLOUD_", "CLOUDFLARE_")


@pytest.fixture(scope="module")
def root() -> click.Group:
    group = typer.main.get_group(build_app(None))
    assert isinstance(group, click.Group)
    return group


def test_every_pipeline_exists_and_parses() -> None:
    names = {f"{w.parent.name}/{w.name}" for w in p.WORKFLOWS}
    assert {"github/preview.yml", "github/deploy.yml", "gitlab/.gitlab-ci.yml"} <= names
    for workflow in p.WORKFLOWS:
        assert list(p.scripts(workflow)), f"{workflow} has no shell steps"


@pytest.mark.parametrize("workflow", p.WORKFLOWS, ids=lambda w: f"{w.parent.name}/{w.name}")
def test_fatctl_calls_exist_with_their_options(root: click.Group, workflow) -> None:
    calls = [argv for script in p.scripts(workflow) for argv in p.fatctl_calls(script)]
    assert calls, f"{workflow} calls no fatctl command"
    problems = [msg for argv in calls for msg in p.check_call(root, argv)]
    assert not problems, "\n".join(problems)


def test_the_jobs_call_what_the_issue_asks_for() -> None:
    def calls(name: str) -> list[list[str]]:
        found = [w for w in p.WORKFLOWS if w.name == name]
        return [a for w in found for s in p.scripts(w) for a in p.fatctl_calls(s)]

    preview = calls("preview.yml")
    assert ["preview", "--all", "--json"] in preview
    deploy = calls("deploy.yml")
    assert {a[0] for a in deploy} >= {"upgrade", "converge"}
    assert all("--canary" in a for a in deploy if a[0] in ("upgrade", "converge"))
    gitlab = calls(".gitlab-ci.yml")
    assert {a[0] for a in gitlab} >= {"preview", "upgrade", "converge"}


@pytest.mark.parametrize("workflow", p.WORKFLOWS, ids=lambda w: f"{w.parent.name}/{w.name}")
def test_environment_names_are_real_settings(workflow) -> None:
    known = {s.env for s in SETTINGS} | JOB_VARIABLES
    ours = {n for n in p.env_names(workflow) if n.startswith(SETTING_PREFIXES)}
    assert ours - known == set()


def test_readme_names_every_secret_the_workflows_read() -> None:
    readme = (p.DOCS_CI / "README.md").read_text()
    import re

    used = set()
    for workflow in p.GITHUB:
        used |= set(re.findall(r"secrets\.([A-Z0-9_]+)", workflow.read_text()))
    assert used
    missing = {name for name in used if f"`{name}`" not in readme}
    assert not missing


# The checker itself must be able to say no.
def test_checker_rejects_unknown_commands_and_options(root: click.Group) -> None:
    assert p.check_call(root, ["upgrade", "--to", "1", "--all"]) == []
    assert p.check_call(root, ["upgrade", "--to", "1", "--canary-size", "2"])
    assert p.check_call(root, ["deploy", "--all"])
    assert p.check_call(root, ["rollout"])  # a group is not a command
    assert p.check_call(root, ["upgrade", "--to"])  # value missing


def test_extractor_finds_calls_after_operators_and_ignores_mentions() -> None:
    script = (
        'set +e\nfatctl preview --all --json > out.json\necho "fatctl preview failed"\n'
        "true && fatctl status --json | tee s.json\n"
        "fatctl upgrade --to 1 \\\n  --all --canary 1 # trailing comment\n"
    )
    assert list(p.fatctl_calls(script)) == [
        ["preview", "--all", "--json"],
        ["status", "--json"],
        ["upgrade", "--to", "1", "--all", "--canary", "1"],
    ]


def test_preview_summary_renders_the_documented_preview_json() -> None:
    import json
    import re
    import shutil
    import subprocess

    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (the pipelines' runners have it)")
    exit_codes = (p.DOCS_CI.parent / "exit-codes.md").read_text()
    example = re.search(r"`fatctl preview --json`.*?```json\n(.*?)```", exit_codes, re.S)
    assert example, "docs/exit-codes.md lost its preview JSON example"
    doc = json.loads(example.group(1))
    doc["agents"].append({**doc["agents"][0], "agent": "beta", "replaces": 1,
                          "replaces_live_box": True})  # fmt: skip
    summary = subprocess.run(
        ["jq", "-r", "-f", str(p.DOCS_CI / "fatctl-preview-summary.jq")],
        input=json.dumps(doc), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = summary.splitlines()
    assert lines[2].startswith("| alpha | 0 | 1 | 0 | 0 |")
    assert lines[3].startswith("| beta |") and "replaces the live box" in lines[3]
    assert "with changes" in lines[-1]
