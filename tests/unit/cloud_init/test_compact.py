"""The box's units and scripts lose their comment lines, and user-data keeps room to grow.

Hetzner refuses user_data over 32 KiB. With the templates' comments the largest variant with
its host key was 33,016 bytes (the first-boot e2e's spec failed to render); without them it
leaves room for the customer's keys and the next feature.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from cloud_init.compact import without_comments
from cloud_init.files import render_files
from cloud_init.render import MAX_USER_DATA, render_user_data
from fatctl.domain import HostKeyPair
from tests.unit.cloud_init.variants import CUSTOMER_KEY, VARIANTS, Variant, make_spec

SCRIPT = """#!/bin/sh
# why this script exists
set -eu
# shellcheck disable=SC2016
  # an indented comment
x=${1#prefix}  # an inline comment stays
cat >OUT <<'END'
# a line of the file the heredoc writes
END
echo "$x"
"""


def test_whole_line_comments_go_and_the_rest_stays() -> None:
    out = without_comments(SCRIPT, "scripts/x.sh.j2")
    assert out.splitlines()[:2] == [
        "#!/bin/sh",
        "# rendered by fatctl from templates/scripts/x.sh.j2, which explains each line",
    ]
    assert "why this script exists" not in out and "an indented comment" not in out
    assert "x=${1#prefix}  # an inline comment stays" in out
    assert "# a line of the file the heredoc writes" in out
    assert "# shellcheck disable=SC2016" in out


def test_the_compacted_script_does_the_same(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text(without_comments(SCRIPT.replace("OUT", str(tmp_path / "o")), "s"))
    done = subprocess.run(
        ["sh", str(script), "prefixvalue"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and done.stdout == "value\n"
    assert (tmp_path / "o").read_text() == "# a line of the file the heredoc writes\n"


def test_units_and_scripts_on_the_box_carry_no_comment_lines() -> None:
    files = render_files(make_spec(VARIANTS[0]))
    checked = [f for f in files.values() if f.is_unit or f.path == "/usr/local/sbin/fat-firstboot"]
    assert len(checked) >= 4
    for item in checked:
        comments = [ln for ln in item.content.splitlines()[1:] if ln.lstrip().startswith("#")]
        assert all("rendered by fatctl from templates/" in ln for ln in comments), item.path


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_user_data_with_keys_leaves_two_kib(variant: Variant, host_key: HostKeyPair) -> None:
    keys = tuple(f"{CUSTOMER_KEY[:-9]}user{i}" for i in range(3))
    spec = dataclasses.replace(make_spec(variant, host_keys=(host_key,)), customer_keys=keys)
    assert len(render_user_data(spec).encode()) < MAX_USER_DATA - 2048
