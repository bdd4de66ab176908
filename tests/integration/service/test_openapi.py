"""docs/openapi.json is the API's document: it matches what the app serves (regenerate with
`python3 -m fatctl.service.api.openapi`), as docs/cli.md matches the CLI."""

from __future__ import annotations

import json

from fatctl.service.api.openapi import DOC, document


def test_checked_in_openapi_matches_the_app() -> None:
    assert DOC.read_text() == document(), "run: python3 -m fatctl.service.api.openapi"


def test_the_document_describes_the_v1_agents_paths_and_their_answers() -> None:
    paths = json.loads(DOC.read_text())["paths"]
    assert set(paths) == {"/v1/agents", "/v1/agents/{name}"}
    assert set(paths["/v1/agents"]) == {"get", "post"}
    assert set(paths["/v1/agents/{name}"]) == {"get", "delete"}
    assert "202" in paths["/v1/agents"]["post"]["responses"]
    headers = {p["name"] for p in paths["/v1/agents"]["post"]["parameters"]}
    assert "idempotency-key" in headers
