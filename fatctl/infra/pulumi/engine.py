"""The Pulumi engine: `InfraEngine` over the Automation API, one stack `agent-<name>` per agent
in project `fatctl-agents`, running the inline program `stacks.agent.program.agent_program`.

The only importer of `pulumi.automation`. State lives in the configured backend (`file://`
under the data dir by default, `s3://` for teams); secrets are encrypted with a passphrase
derived from the master key, never the key itself. Operational verbs (power, rescue, snapshot,
rebuild, resize) and live status go through the hcloud engine: Pulumi has no verbs for them.
The agent's SSH keys are fleet-level (shared by agents, owned by no stack): `apply` ensures
them through fatctl/infra/hcloud/keys.py before `up`, and the program looks them up.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fatctl.config import Settings
from fatctl.domain import AgentSpec, BoxInfo, ChangeSink, Plan, ResourceChange
from fatctl.domain import ignore_change as _ignore
from fatctl.errors import CloudError, ConfigError, ToolMissing
from fatctl.infra.engine import Capability, InfraEngine
from fatctl.infra.pulumi.locks import clear_stale_locks, describe, file_backend_root
from fatctl.infra.pulumi.preview import plan_from_steps
from fatctl.infra.pulumi.refresh import NO_CHANGES_EXPECTED, refresh_step_from_event
from fatctl.infra.pulumi.state import release_owned_keys
from fatctl.pacing.timing import Timing
from fatctl.private_paths import private_dir
from fatctl.sensitive import Sensitive, redact

if TYPE_CHECKING:
    from fatctl.infra.hcloud.client import Hcloud

PROJECT = "fatctl-agents"
DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
INSTALL_HINT = (
    "install it with `curl -fsSL https://get.pulumi.com | sh`, or set FATCTL_ENGINE=hcloud"
)


def derive_passphrase(master_key: Sensitive) -> Sensitive:
    """A stable, domain-separated passphrase for Pulumi's secrets provider (HKDF-SHA256)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"fatctl/pulumi-passphrase/v1"
    )
    derived = hkdf.derive(master_key.reveal().encode())
    return Sensitive(base64.urlsafe_b64encode(derived).decode().rstrip("="))


def find_cli(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The pulumi binary on PATH, or where the official installer puts it."""
    found = which("pulumi")
    if found:
        return found
    default = Path.home() / ".pulumi" / "bin" / "pulumi"
    return str(default) if default.is_file() else None


def step_from_event(event: Any) -> dict[str, Any] | None:
    """An engine event's resource step in the shape of a `pulumi preview --json` step."""
    pre = getattr(event, "resource_pre_event", None)
    if pre is None:
        return None
    meta = pre.metadata
    op = getattr(meta.op, "value", meta.op)
    return {
        "op": str(op),
        "urn": meta.urn,
        "oldState": {"inputs": dict(meta.old.inputs or {})} if meta.old else None,
        "newState": {"inputs": dict(meta.new.inputs or {})} if meta.new else None,
        "diffReasons": list(meta.diffs or []),
        "detailedDiff": {k: {} for k in (meta.detailed_diff or {})},
    }


def command_error_line(exc: BaseException, secrets: list[Sensitive]) -> str:
    """The CLI's own `error:` line from a CommandError's text, redacted."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r"\berror:", ln)]
    return redact((errors or lines or ["pulumi failed"])[-1], secrets)[:300]


class PulumiEngine:
    name = "pulumi"
    capabilities = frozenset({Capability.REFRESH})

    def __init__(
        self,
        settings: Settings,
        *,
        timing: Timing | None = None,
        on_change: ChangeSink | None = None,
        ops: InfraEngine | None = None,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.settings = settings
        self.timing = timing or Timing()
        self.emit = on_change or _ignore
        self._ops = ops
        self.which = which
        self.backend_url = settings.pulumi_backend_url or f"file://{settings.data_dir / 'pulumi'}"
        self.notices: list[str] = []

    # -- plumbing -----------------------------------------------------------------------------

    def _secrets(self) -> list[Sensitive]:
        return [s for s in (self.settings.hcloud_token, self.settings.master_key) if s]

    def _env(self) -> dict[str, str]:
        master = self.settings.master_key
        if not master:
            raise ConfigError(
                "missing setting master_key: set FATCTL_MASTER_KEY (Pulumi secrets need it)"
            )
        token = self.settings.require("hcloud_token")
        return {
            "PULUMI_CONFIG_PASSPHRASE": derive_passphrase(master).reveal(),
            "HCLOUD_TOKEN": token.reveal(),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_BACKEND_URL": self.backend_url,
        }

    def _preflight(self, spec: AgentSpec) -> str:
        cli = find_cli(self.which)
        if cli is None:
            raise ToolMissing(f"the Pulumi CLI is not installed: {INSTALL_HINT}")
        root = file_backend_root(self.backend_url)
        if root is not None:
            private_dir(root)  # stack state holds resource ids and outputs: owner-only
        cleared, held = clear_stale_locks(self.backend_url, PROJECT, spec.stack_name)
        self.notices += [
            f"cleared stale lock of stack {spec.stack_name}: {describe(c)}" for c in cleared
        ]
        if held:
            raise CloudError(
                f"stack {spec.stack_name} is {describe(held[0])}: another run is updating it; "
                "wait for it, or remove the lock if that run is gone",
                code="concurrent_update",
            )
        return cli

    @contextmanager
    def _guard(self, doing: str, spec: AgentSpec) -> Iterator[None]:
        import pulumi.automation as auto

        try:
            yield
        except auto.ConcurrentUpdateError:
            raise CloudError(
                f"{doing} {spec.stack_name}: another update of this stack is in progress",
                code="concurrent_update",
                hint="wait for it to finish; fatctl clears locks of dead local runs itself",
            ) from None
        except auto.CommandError as exc:
            raise CloudError(
                f"{doing} {spec.stack_name}: {command_error_line(exc, self._secrets())}",
                code="pulumi",
            ) from None
        except FileNotFoundError:
            raise ToolMissing(f"the Pulumi CLI is not installed: {INSTALL_HINT}") from None

    def _stack(self, spec: AgentSpec, user_data: str = "", **program_kw: bool) -> Any:
        cli = self._preflight(spec)
        import pulumi.automation as auto

        from stacks.agent.program import agent_program

        endpoint = self.settings.hcloud_endpoint
        custom = endpoint if endpoint.rstrip("/") != DEFAULT_ENDPOINT else None

        def program() -> None:
            agent_program(spec, user_data=user_data, provider_endpoint=custom, **program_kw)

        with self._guard("select", spec):  # constructing PulumiCommand already runs the CLI
            opts = auto.LocalWorkspaceOptions(
                project_settings=auto.ProjectSettings(
                    name=PROJECT, runtime="python", backend=auto.ProjectBackend(self.backend_url)
                ),
                secrets_provider="passphrase",
                env_vars=self._env(),
                pulumi_command=auto.PulumiCommand(
                    root=str(Path(cli).parent.parent), skip_version_check=True
                ),
            )
            stack = auto.create_or_select_stack(
                stack_name=spec.stack_name, project_name=PROJECT, program=program, opts=opts
            )
            # Inline programs do not tell the CLI which provider they use: install it explicitly
            # (a no-op when that version is already in the plugin cache).
            stack.workspace.install_plugin("hcloud", f"v{version('pulumi_hcloud')}")
            self._release_owned_keys(stack, spec)
            return stack

    def _release_owned_keys(self, stack: Any, spec: AgentSpec) -> None:
        """An older program owned SSH keys: forget them in state so no `up`/`destroy` of this
        stack deletes a key that is now the fleet's (adopted by fingerprint before `up`)."""
        import pulumi.automation as auto

        exported = stack.export_stack()
        cleaned, dropped = release_owned_keys(dict(exported.deployment or {}))
        if dropped:
            stack.import_stack(auto.Deployment(version=exported.version, deployment=cleaned))
            self.notices.append(
                f"stack {spec.stack_name}: {len(dropped)} ssh key(s) handed over to the fleet"
            )

    @property
    def ops(self) -> InfraEngine:
        if self._ops is None:
            from fatctl.infra.hcloud.engine import HcloudEngine

            self._ops = HcloudEngine(self.settings, timing=self.timing)
        return self._ops

    def hcloud_client(self) -> Hcloud:
        return self.ops.hcloud_client()

    # -- declarative side -----------------------------------------------------------------------

    def plan(self, spec: AgentSpec) -> Plan:
        stack = self._stack(spec)
        steps: list[dict[str, Any]] = []
        with self._guard("preview", spec):
            stack.preview(on_event=lambda e: steps.append(s) if (s := step_from_event(e)) else None)
        return plan_from_steps(steps, spec.name)

    def apply(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        stack = self._stack(spec, user_data)
        from fatctl.infra.hcloud.keys import ensure_keys_for

        ensure_keys_for(self.settings, spec, timing=self.timing, emit=self.emit)
        steps: list[dict[str, Any]] = []
        with self._guard("up", spec):
            result = stack.up(
                on_event=lambda e: steps.append(s) if (s := step_from_event(e)) else None
            )
        for change in plan_from_steps(steps, spec.name).changes:
            self.emit(change)
        return box_from_outputs(spec, {k: v.value for k, v in result.outputs.items()})

    def refresh(self, spec: AgentSpec) -> None:
        stack = self._stack(spec)
        with self._guard("refresh", spec):
            stack.refresh()

    def drift(self, spec: AgentSpec) -> Plan:
        """What changed at the cloud behind the stack's back, by `pulumi refresh --preview-only
        --expect-no-changes` (writes no state): an empty plan when nothing did."""
        import pulumi.automation as auto

        stack = self._stack(spec)
        steps: dict[str, dict[str, Any]] = {}

        def collect(event: Any) -> None:
            if step := refresh_step_from_event(event):
                steps[step["urn"]] = step

        with self._guard("refresh", spec):
            try:
                stack.preview_refresh(expect_no_changes=True, on_event=collect)
            except auto.CommandError as exc:
                if isinstance(exc, auto.ConcurrentUpdateError):
                    raise
                if not NO_CHANGES_EXPECTED.search(str(exc)):
                    raise
                if not steps:  # the CLI saw changes the event stream did not name
                    change = ResourceChange("stack", spec.stack_name, "update", "changes at cloud")
                    return Plan(agent=spec.name, changes=(change,))
        return plan_from_steps(steps.values(), spec.name)

    def destroy(self, spec: AgentSpec, *, release_ips: bool) -> None:
        """Lift protection (an `up` in destroy mode), destroy, then remove the stack."""
        stack = self._stack(spec, allow_destroy=True, release_ips=release_ips)
        with self._guard("destroy", spec):
            if stack.export_stack().deployment.get("resources"):
                stack.up()
                stack.destroy()
            stack.workspace.remove_stack(spec.stack_name)

    def status(self, spec_or_name: AgentSpec | str) -> BoxInfo | None:
        return self.ops.status(spec_or_name)

    # -- operational actions (hcloud) -----------------------------------------------------------

    def power_on(self, name: str) -> None:
        self.ops.power_on(name)

    def power_off(self, name: str) -> None:
        self.ops.power_off(name)

    def reboot(self, name: str) -> None:
        self.ops.reboot(name)

    def enable_rescue(self, name: str) -> None:
        self.ops.enable_rescue(name)

    def snapshot(self, name: str, description: str, labels: dict[str, str]) -> str:
        return self.ops.snapshot(name, description, labels)

    def rebuild(self, spec: AgentSpec, image: str, *, user_data: str = "") -> BoxInfo:
        return self.ops.rebuild(spec, image, user_data=user_data)

    def change_type(self, name: str, server_type: str) -> BoxInfo:
        return self.ops.change_type(name, server_type)


def box_from_outputs(spec: AgentSpec, outputs: dict[str, Any]) -> BoxInfo:
    return BoxInfo(
        agent=spec.name,
        server_id=str(outputs.get("server_id", "")),
        ipv4=str(outputs.get("ipv4", "")),
        ipv6=str(outputs.get("ipv6", "")),
        status=str(outputs.get("status", "")),
        server_type=str(outputs.get("server_type", spec.server_type)),
        location=spec.location,
        image=spec.image,
        primary_ipv4_id=str(outputs.get("primary_ipv4_id", "")),
        primary_ipv6_id=str(outputs.get("primary_ipv6_id", "")),
        firewall_id=str(outputs.get("firewall_id", "")),
        labels=tuple(sorted(spec.labels.items())),
    )
