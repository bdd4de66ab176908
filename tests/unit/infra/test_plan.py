"""The pure plan: desired box vs observed resources, with the Pulumi program's diff rules."""

from __future__ import annotations

from dataclasses import replace

from fatctl.domain import AgentSpec, ServicePlan
from fatctl.infra.desired import desired_box, ownership_selector, ssh_keys
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
        keys={k.name: SeenKey("5", k.name, k.public_key, box.key_labels(k)) for k in box.keys},
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


def test_unprotected_or_rebound_server_and_stray_key() -> None:
    s = spec()
    seen = observed_for(s)
    assert seen.server is not None
    loose = replace(
        seen,
        server=replace(seen.server, delete_protection=False, ipv4_id="99"),
        keys={**seen.keys, "carol-old": SeenKey("6", "carol-old", KEY, {})},
    )
    plan = compute_plan("carol", desired_box(s), loose)
    got = actions(plan.changes)
    assert got["server:carol"] == "update" and got["ssh_key:carol-old"] == "delete"
    detail = next(c.detail for c in plan.changes if c.kind == "server")
    assert "protection" in detail and "ipv4 binding" in detail


def test_destroy_plan_keeps_ips_unless_released() -> None:
    seen = observed_for(spec())
    kept = destroy_plan("carol", seen, release_ips=False)
    assert kept.count("delete") == 3 and kept.count("same") == 2
    assert destroy_plan("carol", seen, release_ips=True).count("delete") == 5


def test_desired_names_rules_and_keys() -> None:
    s = spec(customer_keys=(KEY + " dup", "ssh-ed25519 AAAAother me@home"))
    assert [k.name for k in ssh_keys(s)] == ["carol-operator-0", "carol-customer-1"]
    box = desired_box(s)
    assert (box.firewall_name, box.ipv4_name, box.rdns) == (
        "fatctl-carol",
        "carol-ipv4",
        "carol.d.test",
    )
    ssh = next(r for r in box.rules if r.port == "22")
    assert ssh.source_ips == ("0.0.0.0/0", "::/0")
    assert ownership_selector("carol") == "managed-by=fatctl,agent=carol"
