"""docs/openapi.json is the API's document: it matches what the app serves (regenerate with
`python3 -m fatctl.service.api.openapi`), as docs/cli.md matches the CLI."""

from __future__ import annotations

import json

from fatctl.service.api.openapi import DOC, document


def test_checked_in_openapi_matches_the_app() -> None:
    assert DOC.read_text() == document(), "run: python3 -m fatctl.service.api.openapi"


def test_the_document_describes_the_v1_agents_paths_and_their_answers() -> None:
    paths = json.loads(DOC.read_text())["paths"]
    senders = "/v1/agents/{name}/channels/{kind}/senders"
    assert set(paths) == {"/v1/agents", "/v1/agents/{name}", "/v1/agents/{name}/channels",
                          senders, senders + "/{sender}", "/v1/rollouts",
                          "/v1/rollouts/{rollout_id}", "/v1/rollouts/{rollout_id}/abort",
                          "/v1/fleet"}  # fmt: skip
    assert set(paths["/v1/agents"]) == {"get", "post"}
    assert set(paths["/v1/agents/{name}"]) == {"get", "delete", "patch"}
    assert set(paths[senders]) == {"get", "post"} and set(paths["/v1/rollouts"]) == {"get", "post"}
    for path, method in (("/v1/rollouts", "post"), ("/v1/rollouts/{rollout_id}/abort", "post")):
        assert "202" in paths[path][method]["responses"]
        assert {"401", "403", "409"} <= set(paths[path][method]["responses"])
    assert "202" in paths["/v1/agents"]["post"]["responses"]
    headers = {p["name"] for p in paths["/v1/agents"]["post"]["parameters"]}
    assert "idempotency-key" in headers
