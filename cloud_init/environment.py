"""The one Jinja2 environment every renderer uses: strict, and loading from the `templates` package.

Templates are read through importlib.resources, so rendering works the same from a checkout, an
editable install or the wheel. StrictUndefined turns a misspelt variable into an error instead of
an empty string silently written into a box's configuration. A directory path may stand in for
the package (tests render from a deliberately broken copy to prove the validators bite).
"""

from __future__ import annotations

import functools
import json
import shlex
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from fatctl.errors import BadInput

TEMPLATE_PACKAGE = "templates"
TemplateSource = str | Path  # a package name, or a directory holding the same tree


def _loader(source: TemplateSource) -> jinja2.BaseLoader:
    if isinstance(source, Path):
        return jinja2.FileSystemLoader(str(source))
    root = resources.files(source)
    return jinja2.FunctionLoader(lambda name: root.joinpath(name).read_text(encoding="utf-8"))


@functools.cache
def environment(source: TemplateSource = TEMPLATE_PACKAGE) -> jinja2.Environment:
    """A strict environment over one template source (cached: templates compile once)."""
    env = jinja2.Environment(
        loader=_loader(source),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - output is YAML, shell and units, never HTML
        # Shell's `${#array[@]}` would open a Jinja comment; template comments use {## ##}.
        comment_start_string="{##",
        comment_end_string="##}",
    )
    env.filters["shquote"] = shlex.quote
    env.filters["tojson"] = json.dumps
    return env


def render(name: str, source: TemplateSource = TEMPLATE_PACKAGE, **context: Any) -> str:
    """Render one template by its path inside the template tree."""
    try:
        return environment(source).get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        # A template asked for something the renderer does not provide: a bug, said plainly.
        raise BadInput(f"template {name}: {exc.message}") from exc
