"""The API's OpenAPI document, as checked into docs/openapi.json.

`python3 -m fatctl.service.api.openapi` rewrites the file; a test fails when the app and the
file disagree, as the CLI reference's test does for docs/cli.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from fatctl.service.api.app import create_app

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def document() -> str:
    return json.dumps(create_app(None).openapi(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    DOC.write_text(document())


if __name__ == "__main__":
    main()
