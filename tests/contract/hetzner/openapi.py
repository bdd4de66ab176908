"""Hetzner's OpenAPI document (vendored, unchanged, in data/) as a checker of HTTP exchanges:
the operation a request hits, its request and response schemas, and the documented HTTP status
of each error code.

The copy predates three changes Hetzner announced in its changelog; they are applied here, in
memory, each with the text that announces it (`CHANGELOG`), rather than edited into the file."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

DOCUMENT = Path(__file__).parent / "data" / "hetzner-openapi.yml.gz"
_ERROR_ROW = re.compile(r"^\| `(\d{3})` \| `([a-z0-9_]+)` \|", re.MULTILINE)

CHANGELOG = {
    "assignee_type unassigned": (
        "Hetzner changelog 2026-04-27, quoted in hcloud-python PR #647: 'As of 1 August 2026, "
        "the behavior of the Primary IP `assignee_type` property will change, and will return "
        "`unassigned` when the Primary IP is not assigned (when `assignee_id` is `null`).'"
    ),
    "assignee_type optional": (
        "Same entry: 'the Primary IP request body `assignee_type` property of the operation "
        "`POST /v1/primary_ips` is now optional.'"
    ),
    "id or name": (
        "The document's own descriptions: 'ID or name of the Image the Server is created from.', "
        "'SSH key IDs (`integer`) or names (`string`) which should be injected into the Server', "
        "typed `string` only; hcloud-python sends `id_or_name`, an integer when it has the id."
    ),
    "datacenter removed": (
        "hcloud-python v2.23.0: 'Removed the deprecated Datacenter property from the Server and "
        "PrimaryIP resources. Since the property was already removed from the Hetzner Cloud API "
        "[...]'; the document itself: 'will be removed after 1 July 2026'."
    ),
}


@cache
def document() -> dict[str, Any]:
    with gzip.open(DOCUMENT, "rt", encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    _apply_changelog(doc)
    return doc


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in the document (schemas are found by their shape, not their place)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def _apply_changelog(doc: dict[str, Any]) -> None:
    create = doc["paths"]["/primary_ips"]["post"]["requestBody"]["content"]["application/json"]
    required = create["schema"]["required"]
    required.remove("assignee_type")  # CHANGELOG["assignee_type optional"]
    for schema in _schemas(doc["paths"]):
        props = schema.get("properties")
        if not isinstance(props, dict):
            continue
        assignee = props.get("assignee_type")
        if (
            isinstance(assignee, dict)
            and assignee.get("enum") == ["server"]
            and "assignee_id" in (schema.get("required") or [])
        ):
            assignee["enum"] = ["server", "unassigned"]  # CHANGELOG["assignee_type unassigned"]
        for prop in props.values():
            _id_or_name(prop)  # CHANGELOG["id or name"]
        dc = props.get("datacenter")
        if isinstance(dc, dict) and dc.get("deprecated"):
            del props["datacenter"]  # CHANGELOG["datacenter removed"]
            if "datacenter" in (schema.get("required") or []):
                schema["required"].remove("datacenter")


def _id_or_name(prop: Any) -> None:
    text = prop.get("description", "") if isinstance(prop, dict) else ""
    if not (text.startswith("ID or name") or "IDs (`integer`) or names" in text):
        return
    target = prop["items"] if prop.get("type") == "array" else prop
    if target.get("type") == "string":
        del target["type"]
        target["oneOf"] = [{"type": "string"}, {"type": "integer"}]


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: dict[str, Any]

    def request_schema(self) -> dict[str, Any] | None:
        body = self.spec.get("requestBody") or {}
        return (body.get("content") or {}).get("application/json", {}).get("schema")

    def response(self, status: int) -> dict[str, Any] | None:
        responses = self.spec["responses"]
        return responses.get(str(status)) or responses.get(f"{str(status)[0]}xx")

    def success_statuses(self) -> set[int]:
        return {int(s) for s in self.spec["responses"] if s.isdigit()}

    def error_statuses(self) -> dict[str, set[int]]:
        """The document's general "Error Codes" table plus this operation's own errors."""
        table: dict[str, set[int]] = {}
        for text in (document()["info"]["description"], self.spec.get("description", "")):
            for status, code in _ERROR_ROW.findall(text):
                table.setdefault(code, set()).add(int(status))
        return table


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Path templates, the most literal first (`/servers/{id}/actions/poweroff` before
    `/servers/{id}/actions/{action_id}`)."""
    found = []
    for template in document()["paths"]:
        pattern = re.sub(r"\{[^/]+\}", "[^/]+", template)
        found.append((re.compile(f"^{pattern}$"), template))
    return sorted(found, key=lambda item: item[1].count("{"))


def operation(method: str, path: str) -> Operation:
    for pattern, template in _templates():
        spec = document()["paths"][template].get(method.lower())
        if spec is not None and pattern.match(path):
            return Operation(method.upper(), template, spec)
    raise LookupError(f"{method} {path} is not an operation of Hetzner's API")


def errors(schema: dict[str, Any] | None, instance: Any) -> list[str]:
    """Schema violations as `path: message` lines (OpenAPI 3.0 rules: `nullable` and friends)."""
    if schema is None:
        return [] if instance in (None, b"", "") else ["a body where the document has none"]
    validator = OAS30Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def undocumented(schema: dict[str, Any] | None, instance: Any, at: str = "") -> list[str]:
    """Fields the emulator sends that the schema does not describe (a removed field such as
    `datacenter` passes the schema, which allows extra properties, and is caught here)."""
    if not isinstance(schema, dict):
        return []
    for key in ("oneOf", "anyOf"):
        if key in schema:
            fitting = [s for s in schema[key] if not errors(s, instance)]
            return undocumented(fitting[0], instance, at) if fitting else []
    found: list[str] = []
    if isinstance(instance, dict) and isinstance(schema.get("properties"), dict):
        props = schema["properties"]
        if schema.get("additionalProperties") in (None, False):
            found += [f"{at}/{k}" for k in instance if k not in props]
        for key, value in instance.items():
            found += undocumented(props.get(key), value, f"{at}/{key}")
    elif isinstance(instance, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in instance.items():
            found += undocumented(schema["additionalProperties"], value, f"{at}/{key}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(instance):
            found += undocumented(schema["items"], value, f"{at}/{i}")
    return found
