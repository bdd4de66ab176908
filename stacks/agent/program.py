"""The agent stack as a plain function of an `AgentSpec`: what `pulumi up` makes for one box.

Called by the Automation API driver (fatctl/infra/pulumi/engine.py) and by `__main__.py` when an
operator runs `pulumi preview` by hand. Every name, label and rule comes from
`fatctl.infra.desired`, the same description the hcloud engine applies.

SSH keys are not this stack's: Hetzner holds one key per fingerprint, shared by every agent that
uses it, so fatctl ensures them fleet-wide before `up` (fatctl/infra/hcloud/keys.py) and the
program only looks them up by label. Destroying this stack never deletes a key.
"""

from __future__ import annotations

import pulumi
import pulumi_hcloud as hcloud

from fatctl.domain import AgentSpec
from fatctl.infra.desired import KEY_LABEL, DesiredBox, desired_box, fleet_key_selector
from stacks.agent.options import primary_ip_resource_options, server_resource_options


def _opts(provider: hcloud.Provider | None, **kwargs: object) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(provider=provider, **kwargs)  # type: ignore[arg-type]


def _key_ids(box: DesiredBox, provider: hcloud.Provider | None) -> pulumi.Output[list[str]]:
    """The fleet keys' ids in the box's order, looked up by fingerprint label."""
    if not box.keys:
        return pulumi.Output.from_input([])
    found = hcloud.get_ssh_keys_output(
        with_selector=fleet_key_selector(box.keys), opts=pulumi.InvokeOptions(provider=provider)
    )

    def ordered(keys: list[hcloud.outputs.GetSshKeysSshKeyResult]) -> list[str]:
        ids = {k.labels.get(KEY_LABEL): str(k.id) for k in keys}
        missing = [k.name for k in box.keys if k.fingerprint not in ids]
        # A preview may run before fatctl uploaded a new key; an update must not go without it.
        if missing and not pulumi.runtime.is_dry_run():
            raise ValueError(
                f"fleet ssh keys not found at Hetzner: {', '.join(missing)} "
                "(fatctl uploads them before `up`; run `fatctl provision`)"
            )
        return [ids[k.fingerprint] for k in box.keys if k.fingerprint in ids]

    return found.ssh_keys.apply(ordered)


def _firewall(box: DesiredBox, provider: hcloud.Provider | None) -> hcloud.Firewall:
    rules = [
        hcloud.FirewallRuleArgs(
            direction=r.direction,
            protocol=r.protocol,
            port=r.port,
            source_ips=list(r.source_ips),
            description=r.description,
        )
        for r in box.rules
    ]
    return hcloud.Firewall(
        box.firewall_name,
        name=box.firewall_name,
        rules=rules,
        labels=box.labels,
        opts=_opts(provider),
    )


def _primary_ip(
    box: DesiredBox,
    family: str,
    provider: hcloud.Provider | None,
    *,
    allow_destroy: bool,
    release_ips: bool,
) -> hcloud.PrimaryIp:
    name = box.ipv4_name if family == "ipv4" else box.ipv6_name
    options = primary_ip_resource_options(allow_destroy=allow_destroy, release_ips=release_ips)
    return hcloud.PrimaryIp(
        name,
        name=name,
        type=family,
        location=box.location,
        # no assignee_type: the provider warns "This attribute is now optional and is only
        # required together with the assignee_id attribute"; the server takes the IP instead
        auto_delete=False,
        delete_protection=not release_ips,
        labels=box.labels,
        opts=_opts(provider, **options.as_kwargs()),
    )


def _server(
    box: DesiredBox,
    key_ids: pulumi.Output[list[str]],
    firewall: hcloud.Firewall,
    ips: tuple[hcloud.PrimaryIp, hcloud.PrimaryIp],
    provider: hcloud.Provider | None,
    *,
    user_data: str,
    allow_destroy: bool,
) -> hcloud.Server:
    ipv4, ipv6 = ips
    options = server_resource_options(allow_destroy=allow_destroy)
    return hcloud.Server(
        box.server_name,
        name=box.server_name,
        server_type=box.server_type,
        image=box.image,
        location=box.location,
        user_data=pulumi.Output.secret(user_data),
        ssh_keys=key_ids,
        labels=box.labels,
        firewall_ids=[firewall.id.apply(int)],
        public_nets=[
            hcloud.ServerPublicNetArgs(
                ipv4_enabled=True,
                ipv4=ipv4.id.apply(int),
                ipv6_enabled=True,
                ipv6=ipv6.id.apply(int),
            )
        ],
        backups=box.backups,
        delete_protection=not allow_destroy,
        rebuild_protection=not allow_destroy,
        opts=_opts(provider, **options.as_kwargs()),
    )


def _rdns(
    box: DesiredBox,
    ips: tuple[hcloud.PrimaryIp, hcloud.PrimaryIp],
    server: hcloud.Server,
    provider: hcloud.Provider | None,
) -> None:
    """Both PTRs to the agent's name; IPv6 uses the box's address inside its /64."""
    ipv4, ipv6 = ips
    for family, ip_resource, address in (
        ("ipv4", ipv4, ipv4.ip_address),
        ("ipv6", ipv6, server.ipv6_address),
    ):
        hcloud.Rdns(
            f"{box.server_name}-rdns-{family}",
            primary_ip_id=ip_resource.id.apply(int),
            ip_address=address,
            dns_ptr=box.rdns,
            opts=_opts(provider),
        )


def agent_program(
    spec: AgentSpec,
    *,
    user_data: str = "",
    provider_endpoint: str | None = None,
    allow_destroy: bool = False,
    release_ips: bool = False,
) -> dict[str, pulumi.Output]:
    """Declare the agent's resources; returns (and exports) the stack outputs."""
    box = desired_box(spec)
    provider = hcloud.Provider("hcloud", endpoint=provider_endpoint) if provider_endpoint else None
    key_ids = _key_ids(box, provider)
    firewall = _firewall(box, provider)
    flags = {"allow_destroy": allow_destroy, "release_ips": release_ips}
    ips = (_primary_ip(box, "ipv4", provider, **flags), _primary_ip(box, "ipv6", provider, **flags))
    server = _server(
        box, key_ids, firewall, ips, provider, user_data=user_data, allow_destroy=allow_destroy
    )
    _rdns(box, ips, server, provider)
    outputs: dict[str, pulumi.Output] = {
        "server_id": server.id,
        "ipv4": ips[0].ip_address,
        "ipv6": server.ipv6_address,
        "primary_ipv4_id": ips[0].id,
        "primary_ipv6_id": ips[1].id,
        "firewall_id": firewall.id,
        "status": server.status,
        "server_type": server.server_type,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
