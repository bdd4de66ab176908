"""The agent stack as a plain function of an `AgentSpec`: what `pulumi up` makes for one box.

Called by the Automation API driver (fatctl/infra/pulumi_engine.py) and by `__main__.py` when an
operator runs `pulumi preview` by hand. Every name, label and rule comes from
`fatctl.infra.desired`, the same description the hcloud engine applies.
"""

from __future__ import annotations

import pulumi
import pulumi_hcloud as hcloud

from fatctl.domain import AgentSpec
from fatctl.infra.desired import DesiredBox, desired_box
from stacks.agent.options import primary_ip_resource_options, server_resource_options


def _opts(provider: hcloud.Provider | None, **kwargs: object) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(provider=provider, **kwargs)  # type: ignore[arg-type]


def _keys(box: DesiredBox, provider: hcloud.Provider | None) -> list[hcloud.SshKey]:
    return [
        hcloud.SshKey(
            key.name,
            name=key.name,
            public_key=key.public_key,
            labels=box.key_labels(key),
            opts=_opts(provider),
        )
        for key in box.keys
    ]


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
        assignee_type="server",
        auto_delete=False,
        delete_protection=not release_ips,
        labels=box.labels,
        opts=_opts(provider, **options.as_kwargs()),
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
    keys = _keys(box, provider)
    firewall = _firewall(box, provider)
    ipv4 = _primary_ip(box, "ipv4", provider, allow_destroy=allow_destroy, release_ips=release_ips)
    ipv6 = _primary_ip(box, "ipv6", provider, allow_destroy=allow_destroy, release_ips=release_ips)
    server = hcloud.Server(
        box.server_name,
        name=box.server_name,
        server_type=box.server_type,
        image=box.image,
        location=box.location,
        user_data=pulumi.Output.secret(user_data),
        ssh_keys=[k.id for k in keys],
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
        opts=_opts(provider, **server_resource_options(allow_destroy=allow_destroy).as_kwargs()),
    )
    for name, ip_resource, address in (
        ("ipv4", ipv4, ipv4.ip_address),
        ("ipv6", ipv6, server.ipv6_address),
    ):
        hcloud.Rdns(
            f"{box.server_name}-rdns-{name}",
            primary_ip_id=ip_resource.id.apply(int),
            ip_address=address,
            dns_ptr=box.rdns,
            opts=_opts(provider),
        )
    outputs: dict[str, pulumi.Output] = {
        "server_id": server.id,
        "ipv4": ipv4.ip_address,
        "ipv6": server.ipv6_address,
        "primary_ipv4_id": ipv4.id,
        "primary_ipv6_id": ipv6.id,
        "firewall_id": firewall.id,
        "status": server.status,
        "server_type": server.server_type,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
