"""The box's copies of units and scripts without their comment lines (pure).

Hetzner takes at most 32 KiB of user-data, and the templates' comments (why each unit setting
and script step is there) were a fifth of it. The templates keep every comment; the box gets a
one-line pointer to its template instead, so `systemctl cat` still says where the why is.
Only whole-line comments go: a `#` after code may be part of it (`${x#y}`, a URL), and a
heredoc's lines are the content of another file, so they are kept as they are, and so are
ShellCheck's directives.
"""

from __future__ import annotations

import re

# `<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`: the word that ends the heredoc.
# ShellCheck's directives are comments that change what the check of the box's copy says.
_DIRECTIVE = re.compile(r"\s*# shellcheck ")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def without_comments(text: str, template: str) -> str:
    """`text` without whole-line `#` comments outside heredocs, and with a pointer to the
    template after the shebang (scripts) or at the top (units, nftables)."""
    lines = text.splitlines()
    head = [lines.pop(0)] if lines and lines[0].startswith("#!") else []
    pointer = f"# rendered by fatctl from templates/{template}, which explains each line"
    kept: list[str] = []
    ending = ""  # the word that ends the heredoc we are in, "" outside one
    for line in lines:
        if ending:
            kept.append(line)
            if line.strip() == ending:
                ending = ""
            continue
        if line.lstrip().startswith("#") and not _DIRECTIVE.match(line):
            continue
        if kept and not line.strip() and not kept[-1].strip():
            continue  # a removed comment block leaves one blank line, not several
        kept.append(line)
        found = _HEREDOC.search(line)
        if found:
            ending = found.group(2)
    return "\n".join([*head, pointer, *kept]).strip("\n") + "\n"
