"""fatctl's error hierarchy: each error carries the exit code the CLI turns it into.

Exit codes are part of the CLI contract: 0 ok, 1 failed (environment, cloud, remote),
2 bad input (an option, a name, a missing or malformed setting). Messages are one line and
must never contain a secret value.
"""

from __future__ import annotations

import re


class FatctlError(Exception):
    """Base class: a failure fatctl understands and can explain in one line."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def kind(self) -> str:
        """What kind of failure, for machine-readable errors: the nearest class of this
        module, snake_case without "Error" (CloudError -> cloud, HostKeyMismatch ->
        host_key_mismatch); "failed" for one of no particular kind."""
        base = next(c for c in type(self).__mro__ if c.__module__ == __name__)
        if base is FatctlError:
            return "failed"
        return re.sub(r"(?<!^)(?=[A-Z])", "_", base.__name__.removesuffix("Error")).lower()

    def one_line(self) -> str:
        text = self.message.replace("\n", " ").strip()
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class BadInput(FatctlError):
    """The user gave something invalid: a name, a key, an option value."""

    exit_code = 2


class ConfigError(FatctlError):
    """A setting is missing or malformed in the environment or fatctl.toml.

    Settings are the operator's input as much as options are, and the fix is theirs (set the
    variable the message names), so this is bad input: exit 2, like `BadInput`.
    """

    exit_code = 2


class NotFound(FatctlError):
    """The named object does not exist (in the database or the cloud)."""

    exit_code = 1


class StateError(FatctlError):
    """The database is not usable as is: not migrated, or a state transition is not allowed."""

    exit_code = 1


class LeaseHeld(FatctlError):
    """Another fatctl run holds the lease on this object."""

    exit_code = 1


class SecretError(FatctlError):
    """A secret cannot be decrypted: wrong master key, tampered ciphertext, unknown key id."""

    exit_code = 1


class CloudError(FatctlError):
    """A cloud API (Hetzner, Cloudflare, R2) refused or failed a call."""

    exit_code = 1

    def __init__(self, message: str, *, code: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class RemoteError(FatctlError):
    """An SSH connection or remote command failed."""

    exit_code = 1


class HostKeyMismatch(RemoteError):
    """The box presented a host key other than the pinned one: refused, never re-trusted."""


class ToolMissing(FatctlError):
    """An external program (the Pulumi CLI, cloud-init, shellcheck ...) is not installed."""

    exit_code = 1
