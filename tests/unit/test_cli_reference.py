"""docs/cli.md and docs/man/fatctl.1 are what the CLI generates today: a command or option
changed without `python3 -m fatctl.cli.reference` fails here. The man page also renders with
groff without a warning."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from fatctl.cli import reference


def test_checked_in_reference_is_current() -> None:
    stale = [str(path.relative_to(reference.ROOT)) for path, text in reference.rendered().items()
             if not path.exists() or path.read_text() != text]  # fmt: skip
    assert not stale, f"out of date (run python3 -m fatctl.cli.reference): {stale}"


def test_every_command_is_in_the_reference() -> None:
    text = reference.MARKDOWN.read_text()
    for command in ("fatctl provision", "fatctl keys push", "fatctl creds rotate",
                    "fatctl version", "fatctl channels add"):  # fmt: skip
        assert f"## `{command}`" in text
    assert "--dry-run" in text.split("## `fatctl provision`", 1)[1].split("## ", 1)[0]


@pytest.mark.skipif(not shutil.which("groff"), reason="groff not installed")
def test_man_page_renders_cleanly() -> None:
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(reference.MAN_PAGE)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
