"""A state database whose agents are the real sshd hosts, and the Settings that reach them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from fatctl.config import Settings
from fatctl.remote.target import fingerprint
from tests.fixtures.sshd import SshHost


@dataclass
class Fleet:
    engine: object
    settings: Settings
    hosts: list[SshHost]
    env: dict[str, str]


def _insert_agents(engine, hosts: list[SshHost]) -> None:
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent, HostKey, Owner

    with session_scope(engine) as session:
        owner = Owner(email="ops@example.com", plan="managed")
        session.add(owner)
        session.flush()
        for host in hosts:
            agent = Agent(
                name=host.name,
                agent_id=f"id{host.index:04d}",
                owner_id=owner.id,
                state="ready",
                server_type="cx23",
                location="fsn1" if host.index % 2 else "nbg1",
                image="debian-12",
                runtime_version="2026.9.6",
                ipv4=host.address,
            )
            session.add(agent)
            session.flush()
            key_type = host.host_key.split()[0]
            session.add(
                HostKey(
                    agent_pk=agent.id,
                    key_type=key_type,
                    public_key=host.host_key,
                    fingerprint=fingerprint(host.host_key),
                )
            )


@pytest.fixture
def fleet_db(tmp_path: Path):
    """`fleet_db(hosts)` -> Fleet: a migrated SQLite database listing `hosts` as ready agents."""
    from fatctl.state.db import make_engine
    from fatctl.state.migrate import upgrade

    engines = []

    def make(hosts: list[SshHost]) -> Fleet:
        url = f"sqlite:///{tmp_path / 'fatctl.sqlite'}"
        upgrade(url)
        engine = make_engine(url)
        engines.append(engine)
        _insert_agents(engine, hosts)
        ident = hosts[0].identity
        settings = Settings(
            data_dir=tmp_path,
            database_url=url,
            operator_user=ident.operator,
            operator_key_file=ident.key_file,
            ssh_port=str(hosts[0].port),
            customer_user=ident.customer,
        )
        env = {
            "FATCTL_DATA_DIR": str(tmp_path),
            "FATCTL_DATABASE_URL": url,
            "FATCTL_OPERATOR_USER": ident.operator,
            "FATCTL_OPERATOR_KEY_FILE": ident.key_file,
            "FATCTL_SSH_PORT": str(hosts[0].port),
            "FATCTL_CUSTOMER_USER": ident.customer,
            "FATCTL_ACTOR": "test@ci",
        }
        return Fleet(engine, settings, hosts, env)

    yield make
    for engine in engines:
        engine.dispose()  # type: ignore[attr-defined]
