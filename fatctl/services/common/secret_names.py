"""The names per-agent secrets are sealed under in the secret store (names, never values).

One place, because the flow that seals a secret (agent creation, provisioning, rotation) and
the flows that open it (specs, delivery, purge) live in different feature packages.
"""

from __future__ import annotations

GATEWAY_TOKEN_SECRET = "gateway-token"  # noqa: S105 (a record name, not a value)
R2_CREDENTIALS_SECRET = "r2_credentials"  # noqa: S105 (the rclone env file of the box)
# The age identity that opens the agent's state backups (fatctl.backup_keys); its recipient is
# public and lives unsealed in `agents.backup_recipient`.
BACKUP_IDENTITY_SECRET = "backup-identity"  # noqa: S105 (a record name, not a value)


def host_key_secret_name(key_type: str) -> str:
    """Where the sealed private half of a host key of `key_type` is stored."""
    return f"host-key:{key_type}"


HOST_KEY_SECRET = host_key_secret_name("ssh-ed25519")
