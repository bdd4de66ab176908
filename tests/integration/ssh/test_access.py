"""Access flows on real sshd: secret delivery, customer keys in a real login, operator rotation."""

from __future__ import annotations

import json

import pytest

from fatctl.domain import KeyRole
from fatctl.errors import RemoteError
from fatctl.remote.commands.authorized_keys import BEGIN, END, merge_managed_block
from fatctl.remote.runner import Connection, Pool, connect
from fatctl.sensitive import Sensitive
from fatctl.services.access import authorized_keys as access
from fatctl.services.access.rotation import rotate_operator
from fatctl.services.agents import keys as key_service
from fatctl.services.common import delivery
from tests.fixtures.sshd import keygen


def test_deliver_file_mode_owner_content(sshd_hosts, monkeypatch):
    (host,) = sshd_hosts(1)
    commands: list[str] = []
    real_run = Connection.run

    def recording_run(self, command, **kw):
        commands.append(command)
        return real_run(self, command, **kw)

    monkeypatch.setattr(Connection, "run", recording_run)
    ident = host.identity
    secret = Sensitive("OPENCLAW_GATEWAY_TOKEN=s3cr3t-value-123\nSECOND=line\n")
    path = f"/home/{ident.customer}/gateway.env"
    with Pool() as pool:
        target = host.target()
        delivery.deliver_file(
            pool, target, path, secret, owner=ident.customer, group=ident.customer
        )
        res = pool.get(target).run(
            f"sudo -n stat -c '%a %U %G' {path}; sudo -n cat {path}; ls -a /home/{ident.customer}"
        )
        # Overwrite: atomic replace keeps mode and leaves no temp files behind.
        delivery.deliver_file(pool, target, path, Sensitive("new\n"), owner=ident.customer)
        again = pool.get(target).run(f"sudo -n cat {path}; ls -a /home/{ident.customer}")
        # The command line never carried the secret: sshd's own log shows the commands only
        # at DEBUG, so check our side: a failing write must not echo the content.
        with pytest.raises(RemoteError) as err:
            delivery.deliver_file(pool, target, "/nonexistent-dir/x", secret)
    lines = res.stdout.splitlines()
    assert lines[0] == f"600 {ident.customer} {ident.customer}"
    assert "\n".join(lines[1:3]) + "\n" == secret.reveal()
    assert not any(".fatctl." in n for n in res.stdout.split())
    assert again.stdout.splitlines()[0] == "new"
    assert not any(".fatctl." in n for n in again.stdout.split())
    assert (
        "s3cr3t" not in err.value.one_line()
        and "writing /nonexistent-dir/x failed" in err.value.one_line()
    )
    assert commands and not any("s3cr3t" in c for c in commands)  # stdin only, never argv
    on_disk = host.home(ident.customer) / "gateway.env"
    assert on_disk.stat().st_mode & 0o777 == 0o600


def _customer_can_login(host, key_file: str) -> bool:
    try:
        conn = connect(host.target(user=host.identity.customer, key_file=key_file))
    except RemoteError:
        return False
    try:
        return conn.run("whoami").stdout.strip() == host.identity.customer
    finally:
        conn.close()


def test_customer_key_add_revoke_visible_in_real_login(sshd_hosts, fleet_db, tmp_path):
    hosts = sshd_hosts(2)
    fleet = fleet_db(hosts)
    host, other = hosts
    ident = host.identity
    ak = host.home(ident.customer) / ".ssh" / "authorized_keys"
    hand = keygen(tmp_path / "hand", "hand-added")
    ak.write_text(f"# the customer's own\n{hand}\n")
    import shutil

    shutil.chown(ak, ident.customer, ident.customer)
    cust = keygen(tmp_path / "cust", "customer-laptop")
    assert not _customer_can_login(host, str(tmp_path / "cust"))

    key_service.add_key(
        fleet.engine, role=KeyRole.CUSTOMER, public_key=cust, label="", agent=host.name, actor="t"
    )
    access.push_customer_keys(fleet.engine, fleet.settings, host.name, actor="t")
    assert _customer_can_login(host, str(tmp_path / "cust"))
    assert _customer_can_login(host, str(tmp_path / "hand"))
    assert not _customer_can_login(other, str(tmp_path / "cust"))  # only that agent's box
    text = ak.read_text()
    assert text.startswith("# the customer's own\n") and f"{BEGIN}\n{cust}\n{END}\n" in text

    fp = key_service.list_keys(fleet.engine, agent=host.name)[0].fingerprint
    key_service.revoke_key(fleet.engine, fingerprint=fp, agent=host.name, actor="t")
    access.push_customer_keys(fleet.engine, fleet.settings, host.name, actor="t")
    assert not _customer_can_login(host, str(tmp_path / "cust"))
    assert _customer_can_login(host, str(tmp_path / "hand"))
    assert ak.read_text() == merge_managed_block(text, [])
    assert ak.stat().st_mode & 0o777 == 0o600 and ak.owner() == ident.customer
    assert sorted(p.name for p in ak.parent.iterdir()) == ["authorized_keys"]  # no temp files


def test_operator_rotation_with_a_host_down_resumes(sshd_hosts, fleet_db, tmp_path):
    hosts = sshd_hosts(4)
    fleet = fleet_db(hosts)
    ident = hosts[0].identity
    new_pub = keygen(tmp_path / "new_operator", "operator-2026")
    new_file = str(tmp_path / "new_operator")
    key_service.add_key(
        fleet.engine,
        role=KeyRole.OPERATOR,
        public_key=ident.public_key,
        label="old",
        agent=None,
        actor="t",
    )
    down = hosts[2]
    down.stop()
    with Pool() as pool:
        first = rotate_operator(
            fleet.engine, fleet.settings, pool, new_key_file=new_file, actor="t"
        )
    status = {o.agent: o.status for o in first}
    assert status == {h.name: ("failed" if h is down else "rotated") for h in hosts}
    assert "connection refused" in next(o.error for o in first if o.agent == down.name)
    # Old key still valid in the database while a box has not been rotated.
    active = {k.label for k in key_service.list_keys(fleet.engine, agent=None)}
    assert active == {"old", "rotated-in"}

    down.start()
    with Pool() as pool:
        second = rotate_operator(
            fleet.engine, fleet.settings, pool, new_key_file=new_file, actor="t"
        )
    status = {o.agent: o.status for o in second}
    assert status == {h.name: ("rotated" if h is down else "already") for h in hosts}
    assert {k.label for k in key_service.list_keys(fleet.engine, agent=None)} == {"rotated-in"}
    for host in hosts:
        keys = (host.home(ident.operator) / ".ssh" / "authorized_keys").read_text()
        new_line = " ".join(new_pub.split()[:2])  # the key as fatctl derived it from the file
        assert keys == f"{BEGIN}\n{new_line}\n{END}\n"
        with pytest.raises(RemoteError, match="authentication failed"):
            connect(host.target())  # the old key no longer logs in
        conn = connect(host.target(key_file=new_file))
        assert conn.run("sudo -n true").ok  # sudo still real with the new key
        conn.close()
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(fleet.engine) as session:
        events = repo.audit_trail(session, limit=100)
    host_events = [e for e in events if e.action == "keys.rotate-operator.host"]
    assert len(host_events) == 8
    assert sum(e.result == "failed" for e in host_events) == 1
    assert any(e.action == "keys.rotate-operator.done" for e in events)
    assert all("PRIVATE" not in e.detail for e in events) and json.loads(host_events[0].detail)
