"""Input checks shared by the Hetzner routes; each failure is the API's `invalid_input`."""

from __future__ import annotations

import re
from typing import Any

from fatctl.sandbox.hetzner.errors import ApiError, invalid

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_LABEL_KEY = re.compile(
    r"^([a-z0-9A-Z]([a-z0-9A-Z.-]{0,251}[a-z0-9A-Z])?/)?"
    r"[a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?$"
)
# "The `hetzner.cloud/` prefix is reserved and cannot be used." (docs.hetzner.cloud, "Labels")
RESERVED_LABEL_PREFIX = "hetzner.cloud/"
_LABEL_VALUE = re.compile(r"^([a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?)?$")
USER_DATA_MAX = 32 * 1024


def body(payload: Any) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ApiError("json_error", "request body must be a JSON object")
    return payload


def required(data: dict[str, Any], field: str, kind: type | tuple[type, ...] = str) -> Any:
    value = data.get(field)
    if value is None:
        raise invalid(field, "is required")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise invalid(field, "has the wrong type")
    return value


def optional(data: dict[str, Any], field: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(field)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise invalid(field, "has the wrong type")
    return value


def hostname(value: str, field: str = "name") -> str:
    if not _HOSTNAME.fullmatch(value):
        raise invalid(field, "must be a valid hostname (RFC 1123)")
    return value


def labels(data: dict[str, Any], field: str = "labels") -> dict[str, str]:
    value = optional(data, field, dict, {})
    for key, val in value.items():
        if not isinstance(val, str) or not (
            _LABEL_KEY.fullmatch(key) and _LABEL_VALUE.fullmatch(val)
        ):
            raise invalid(field, f"invalid label {key!r}")
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise invalid(field, f"label prefix {RESERVED_LABEL_PREFIX!r} is reserved")
    return dict(value)


def user_data(data: dict[str, Any]) -> str:
    value = optional(data, "user_data", str, "")
    if len(value.encode()) > USER_DATA_MAX:
        raise invalid("user_data", "must be at most 32 KiB")
    return value


def ref(value: Any, field: str) -> int | str:
    """An id or a name, as the API accepts for types, images, locations and ssh keys."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid(field, "must be an id or a name")
    return value
