"""The one Jinja2 environment every renderer uses: strict, and loading from the `templates` package.

Templates are read through importlib.resources, so rendering works the same from a checkout, an
editable install or the wheel. StrictUndefined turns a misspelt variable into an error instead of
an empty string silently written into a box's configuration.
"""

from __future__ import annotations

import functools
import json
import shlex
from importlib import resources
from typing import Any

import jinja2

TEMPLATE_PACKAGE = "templates"


def _load(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


@functools.cache
def environment(package: str = TEMPLATE_PACKAGE) -> jinja2.Environment:
    """A strict environment over the template package (cached: templates compile once)."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _load(package, name)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - output is YAML/shell/units, never HTML
    )
    env.filters["shquote"] = shlex.quote
    env.filters["tojson"] = json.dumps
    return env


def render(name: str, package: str = TEMPLATE_PACKAGE, **context: Any) -> str:
    """Render one template by file name with the given variables."""
    return environment(package).get_template(name).render(**context)
