"""Fleet-level SSH keys at Hetzner: ensured once, found by fingerprint, shared by every agent.

Hetzner refuses a second key with the same fingerprint (`uniqueness_error`), so an operator key
(or a customer key of a customer with several agents) exists once per project. Both engines
ensure the keys here before an agent's box is created: the hcloud engine inline, the Pulumi
engine before `up` (its per-agent program only looks the keys up, so destroying one agent's
stack never deletes a key another agent uses). A key uploaded by hand or by an older fatctl is
adopted by fingerprint and labelled, never duplicated. The keys ensured are remembered for
the process, and their ids handed to the caller to keep (the database's `hcloud_key_ids`, one
per project) and seed a later process with, so a fresh agent's box is created without listing
them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from hcloud.ssh_keys import SSHKey

from fatctl.config import Settings
from fatctl.domain import MANAGED_BY, MANAGER, AgentSpec, ChangeSink, KeyRole, ResourceChange
from fatctl.errors import CloudError
from fatctl.infra.desired import KEY_LABEL, KeyDecl, desired_box, fleet_key_labels, key_decl
from fatctl.infra.hcloud import recover
from fatctl.infra.hcloud.client import Hcloud
from fatctl.pacing.timing import Timing

# (project, fingerprint) -> SDK key ensured by this process. A key deleted since then makes the
# server create fail, and the engine then ensures the keys again the long way.
_ENSURED: dict[tuple[tuple[str, object], str], Any] = {}


def remember_ids(h: Hcloud, ids: Mapping[str, str]) -> None:
    """Seed the cache with ids recorded earlier (fingerprint -> Hetzner id). A key ensured by
    this process wins; a stale id fails the server create, which then ensures the long way."""
    for fingerprint, key_id in ids.items():
        if key_id.isdigit():
            _ENSURED.setdefault((h.project, fingerprint), SSHKey(id=int(key_id)))


def ensured_ids(h: Hcloud, keys: tuple[KeyDecl, ...]) -> dict[str, str]:
    """fingerprint -> Hetzner id of those of `keys` this process has ensured (or was told)."""
    found = {k.fingerprint: _ENSURED.get((h.project, k.fingerprint)) for k in keys}
    return {fp: str(sdk.id) for fp, sdk in found.items() if sdk is not None and sdk.id}


def forget_keys(h: Hcloud) -> None:
    for cached in [c for c in _ENSURED if c[0] == h.project]:
        del _ENSURED[cached]


def hetzner_fingerprint(key: Any) -> str:
    """An SDK key's fingerprint in fatctl's label form (Hetzner's, without the colons)."""
    return str(key.fingerprint or "").replace(":", "")


def list_keys(h: Hcloud) -> dict[str, Any]:
    """Every SSH key of the project, by fingerprint: adoption must see unlabelled keys too."""
    keys = h.call("list ssh keys", h.client.ssh_keys.get_all)
    return {hetzner_fingerprint(k): k for k in keys}


def operator_keys(keys: dict[str, Any]) -> list[Any]:
    """The fleet's operator keys (what rescue mode is given)."""
    return [
        k
        for k in keys.values()
        if (k.labels or {}).get(MANAGED_BY) == MANAGER
        and (k.labels or {}).get("role") == KeyRole.OPERATOR.value
        and (k.labels or {}).get(KEY_LABEL)
    ]


def _report(emit: ChangeSink, name: str, action: str, detail: str = "") -> None:
    emit(ResourceChange(kind="ssh_key", name=name, action=action, detail=detail))


def _adopt(h: Hcloud, key: KeyDecl, found: Any, emit: ChangeSink) -> Any:
    labels = fleet_key_labels(key, found.labels)
    if dict(found.labels or {}) != labels:
        h.call("label ssh key", partial(found.update, labels=labels))
        _report(emit, key.name, "update", f"adopt {found.name}")
    else:
        _report(emit, key.name, "same")
    return found


def ensure_fleet_keys(
    h: Hcloud, keys: tuple[KeyDecl, ...], seen: dict[str, Any], emit: ChangeSink
) -> list[Any]:
    """The SDK keys for `keys`, in order: adopted by fingerprint, created only when absent."""
    out = []
    for key in keys:
        found = seen.get(key.fingerprint)
        if found is not None:
            out.append(_adopt(h, key, found, emit))
            continue
        try:
            create = partial(h.client.ssh_keys.create, key.name, key.public_key, key.labels)
            out.append(h.call(f"create ssh key {key.name}", create, recover.ssh_key(h, key)))
            _report(emit, key.name, "create")
        except CloudError as exc:
            # Another run uploaded it since we listed (or its create response was lost).
            if exc.code != "uniqueness_error":
                raise
            again = list_keys(h).get(key.fingerprint)
            if again is None:
                raise
            out.append(_adopt(h, key, again, emit))
    for key, sdk in zip(keys, out, strict=True):
        _ENSURED[(h.project, key.fingerprint)] = sdk
    return out


def fresh_keys(h: Hcloud, keys: tuple[KeyDecl, ...], emit: ChangeSink) -> list[Any]:
    """The keys for a fresh box without listing: known ones as they are, the others uploaded
    (a key that exists after all is adopted when its upload hits `uniqueness_error`)."""
    missing = tuple(k for k in keys if (h.project, k.fingerprint) not in _ENSURED)
    if missing:
        ensure_fleet_keys(h, missing, {}, emit)
    for key in keys:
        if key not in missing:
            _report(emit, key.name, "same")
    return [_ENSURED[(h.project, k.fingerprint)] for k in keys]


def ensure_keys_for(
    settings: Settings, spec: AgentSpec, *, timing: Timing, emit: ChangeSink
) -> list[str]:
    """For the Pulumi engine before `up`: ensure the agent's fleet keys; returns their ids."""
    h = Hcloud(settings, timing)
    keys = ensure_fleet_keys(h, desired_box(spec).keys, list_keys(h), emit)
    return [str(k.id) for k in keys]


def upload_key(settings: Settings, public_key: str, role: KeyRole, *, timing: Timing) -> str:
    """Upload (or adopt) one fleet key as soon as it is added, so no provision pays for it;
    returns its Hetzner id. One call when it is new, one more when it exists already."""
    h = Hcloud(settings, timing)
    sdk = fresh_keys(h, (key_decl(public_key, role),), lambda change: None)[0]
    return str(sdk.id)
