"""The pure plan: desired box vs observed resources, with the Pulumi program's diff rules."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

from fatctl.domain import AgentSpec, ServicePlan
from fatctl.infra.desired import desired_box, key_fingerprint, ownership_selector, ssh_keys
from fatctl.infra.plan import (
    Observed,
    SeenFirewall,
    SeenIp,
    SeenKey,
    SeenServer,
    compute_plan,
    destroy_plan,
    rule_key,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA op@x"


def spec(**kw: object) -> AgentSpec:
    base: dict[str, object] = dict(
        name="carol",
        agent_id="c",
        owner_email="c@x.io",
        plan=ServicePlan.BYOK,
        domain="d.test",
        operator_keys=(KEY,),
    )
    base.update(kw)
    return AgentSpec(**base)  # type: ignore[arg-type]


def observed_for(s: AgentSpec) -> Observed:
    box = desired_box(s)
    ips = {
        fam: SeenIp(
            str(i), name, fam, f"ip{i}", box.location, dict(box.labels), False, True, "9", box.rdns
        )
        for i, (fam, name) in enumerate((("ipv4", box.ipv4_name), ("ipv6", box.ipv6_name)), 1)
    }
    return Observed(
        server=SeenServer(
            "9",
            box.server_name,
            box.server_type,
            "debian-12",
            box.location,
            "running",
            dict(box.labels),
            box.backups,
            True,
            True,
            "1",
            "2",
        ),
        keys={k.fingerprint: SeenKey("5", k.name, k.public_key, k.labels) for k in box.keys},
        firewall=SeenFirewall(
            "7", box.firewall_name, dict(box.labels), frozenset(rule_key(r) for r in box.rules)
        ),
        ips=ips,
    )


def actions(plan_changes: object) -> dict[str, str]:
    return {f"{c.kind}:{c.name}": c.action for c in plan_changes}  # type: ignore[attr-defined]


def test_nothing_exists_everything_is_created() -> None:
    plan = compute_plan("carol", desired_box(spec()), Observed())
    assert set(actions(plan.changes).values()) == {"create"}
    assert plan.count("create") == 7  # 1 key, fw, 2 IPs, server, 2 rdns


def test_converged_is_all_same() -> None:
    s = spec()
    assert not compute_plan("carol", desired_box(s), observed_for(s)).has_changes


def test_ignored_drift_and_real_drift() -> None:
    s = spec()
    seen = observed_for(s)
    assert not compute_plan("carol", desired_box(spec(image="ubuntu-24.04")), seen).has_changes
    resized = compute_plan("carol", desired_box(spec(server_type="cx33")), seen)
    assert [(c.kind, c.action, c.detail) for c in resized.changes if c.action != "same"] == [
        ("server", "update", "server_type cx23 -> cx33")
    ]
    moved = compute_plan("carol", desired_box(spec(location="hel1")), seen)
    assert moved.replaces_server and moved.count("replace") == 3  # server + both IPs
    cidr = compute_plan("carol", desired_box(spec(operator_cidrs=("10.0.0.0/8",))), seen)
    assert [(c.kind, c.detail) for c in cidr.changes if c.action != "same"] == [
        ("firewall", "rules")
    ]
    managed = compute_plan("carol", desired_box(spec(plan=ServicePlan.MANAGED)), seen)
    changed = {c.kind: c.detail for c in managed.changes if c.action != "same"}
    assert "backups False -> True" in changed["server"]


def test_unprotected_or_rebound_server_and_other_fleet_keys() -> None:
    s = spec()
    seen = observed_for(s)
    assert seen.server is not None
    other = SeenKey("6", "fatctl-key-other", "ssh-ed25519 AAAAother x", {"role": "customer"})
    loose = replace(
        seen,
        server=replace(seen.server, delete_protection=False, ipv4_id="99"),
        keys={**seen.keys, "other": other},
    )
    plan = compute_plan("carol", desired_box(s), loose)
    got = actions(plan.changes)
    assert got["server:carol"] == "update"
    assert not any(c.kind == "ssh_key" and c.action != "same" for c in plan.changes)
    detail = next(c.detail for c in plan.changes if c.kind == "server")
    assert "protection" in detail and "ipv4 binding" in detail


def test_destroy_plan_keeps_ips_unless_released() -> None:
    seen = observed_for(spec())
    kept = destroy_plan("carol", seen, release_ips=False)
    assert kept.count("delete") == 2 and kept.count("same") == 2  # fleet keys are not listed
    assert {c.kind for c in kept.changes} == {"server", "firewall", "primary_ip"}
    assert destroy_plan("carol", seen, release_ips=True).count("delete") == 4


def test_fleet_keys_adopted_by_fingerprint_and_operator_role_sticks() -> None:
    s = spec(customer_keys=("ssh-ed25519 AAAAother me@home",))
    box = desired_box(s)
    op, cu = box.keys
    hand_made = SeenKey("8", "laptop", op.public_key, {})  # uploaded by hand, same blob
    also_op = SeenKey("9", cu.name, cu.public_key, {**cu.labels, "role": "operator"})
    plan = compute_plan(
        "carol", box, Observed(keys={op.fingerprint: hand_made, cu.fingerprint: also_op})
    )
    got = {c.name: (c.action, c.detail) for c in plan.changes if c.kind == "ssh_key"}
    assert got == {op.name: ("update", "adopt laptop"), cu.name: ("same", "")}


def test_desired_names_rules_and_keys() -> None:
    s = spec(customer_keys=(KEY + " dup", "ssh-ed25519 AAAAother me@home"))
    keys = ssh_keys(s)
    assert [(k.role.value, k.fingerprint) for k in keys] == [
        ("operator", key_fingerprint(KEY)),
        ("customer", key_fingerprint("ssh-ed25519 AAAAother")),
    ]
    assert keys[0].name == f"fatctl-key-{key_fingerprint(KEY)[:16]}"
    assert keys[0].labels == {
        "managed-by": "fatctl",
        "fatctl-key": key_fingerprint(KEY),
        "role": "operator",
    }
    # Hetzner's MD5 fingerprint of a real key, colons dropped.
    real = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2oVHXy0d9wxV7QvRQDhyGwS5SubiR7s0nqHo4Yz3V x"
    assert key_fingerprint(real) == hashlib.md5(base64.b64decode(real.split()[1])).hexdigest()
    box = desired_box(s)
    assert (box.firewall_name, box.ipv4_name, box.rdns) == (
        "fatctl-carol",
        "carol-ipv4",
        "carol.d.test",
    )
    ssh = next(r for r in box.rules if r.port == "22")
    assert ssh.source_ips == ("0.0.0.0/0", "::/0")
    assert str(ownership_selector("carol")) == "managed-by=fatctl,agent=carol"
