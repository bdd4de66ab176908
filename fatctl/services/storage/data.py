"""The customer's R2 data: deleted only by `fatctl destroy --purge-data`.

Deletion uses the agent's own prefix-scoped temporary credentials (stored sealed by provision
or `creds rotate`), so even a bug here cannot reach another agent's prefix. boto3 speaks S3 to
R2 (or the sandbox's moto server); it is imported here only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fatctl.errors import BadInput, ConfigError
from fatctl.services.common.secret_names import R2_CREDENTIALS_SECRET
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.secrets import KeyRing


def parse_env(text: str) -> dict[str, str]:
    """KEY=value lines of an env file."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value
    return out


def purge_credentials(
    db: Engine, ring: KeyRing, settings: Settings, name: str
) -> tuple[dict[str, str], str]:
    """The agent's R2 credentials (env) and prefix, or the refusal `--purge-data` gets: asked
    by destroy before it removes anything, and again when it purges."""
    from fatctl.dns.r2_credentials import agent_prefix
    from fatctl.state import repo, secret_store

    if not settings.r2_endpoint:
        raise ConfigError("--purge-data needs the r2_endpoint setting (FATCTL_R2_ENDPOINT)")
    with session_scope(db) as session:
        agent = repo.get_agent(session, name)
        if not any(
            s.name == R2_CREDENTIALS_SECRET for s in secret_store.names(session, agent_pk=agent.id)
        ):
            raise BadInput(f"agent {name} has no R2 credentials stored: nothing can purge it")
        env = parse_env(
            secret_store.get(session, ring, agent_pk=agent.id, name=R2_CREDENTIALS_SECRET).reveal()
        )
        return env, agent_prefix(agent.agent_id)


def purge_prefix(db: Engine, ring: KeyRing, settings: Settings, name: str) -> int:
    """Delete every object under `agents/<id>/`; returns how many were deleted."""
    import boto3

    env, prefix = purge_credentials(db, ring, settings, name)
    client = boto3.client(
        "s3",
        endpoint_url=settings.r2_endpoint,
        aws_access_key_id=env.get("RCLONE_CONFIG_R2_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("RCLONE_CONFIG_R2_SECRET_ACCESS_KEY"),
        aws_session_token=env.get("RCLONE_CONFIG_R2_SESSION_TOKEN"),
        region_name="auto",
    )
    deleted = 0
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=settings.r2_bucket, Prefix=prefix
    ):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=settings.r2_bucket, Delete={"Objects": keys})
            deleted += len(keys)
    return deleted
