"""OpenClaw installed and supervised as its own documentation for the pinned version says.

OpenClaw 2026.9.6, docs/install/index.md: "On npm 12 or npm 11.16+: `npm install -g
openclaw@latest --allow-scripts=openclaw` ... On npm 11.15 and earlier, use the same command
without `--allow-scripts=openclaw`. ... The `--allow-scripts=openclaw` option explicitly allows
OpenClaw's `preinstall` and `postinstall` steps". npm 11.21.2 (the box's npm), docs/content/
using-npm/config.md, `allow-scripts`: "Passing `--allow-scripts` on the command line during a
project-scoped `npm install` ... is an error" and "For team-wide policy in a project, use the
`allowScripts` field in `package.json`"; "`--ignore-scripts` ... override[s] this setting".
Measured with that npm and Node 24.21.0: the flag on a --prefix install fails with
EALLOWSCRIPTS; `allowScripts: {"openclaw@2026.9.6": true}` installs with OpenClaw's lifecycle
completed (no `.openclaw-lifecycle-pending` left).

docs/platforms/linux.md and docs/gateway/index.md give the reference unit: "Restart=always
RestartSec=5 RestartPreventExitStatus=78 TimeoutStopSec=330 TimeoutStartSec=30
SuccessExitStatus=0 143 OOMPolicy=continue KillMode=mixed" with "StartLimitBurst=10
StartLimitIntervalSec=300"; docs/cli/gateway/restart-and-supervision.md: "Set
`OPENCLAW_SUPERVISOR_MODE=external` only when another process manager owns the Gateway
lifecycle"; docs/cli/doctor/checks.md: "Set `OPENCLAW_SERVICE_REPAIR_POLICY=external` when
another supervisor owns the gateway lifecycle".
"""

from __future__ import annotations

from cloud_init import layout as L
from cloud_init.packages import NPM_VERSION
from cloud_init.render import render_files, render_install_script
from fatctl.domain import ServicePlan
from tests.unit.cloud_init.variants import Variant, make_spec

STOCK = Variant("debian-12", False, ServicePlan.MANAGED, False)

# OpenClaw's reference [Service] settings, as its docs print them.
REFERENCE_SERVICE = {
    "Restart": "always",
    "RestartSec": "5",
    "RestartPreventExitStatus": "78",
    "TimeoutStopSec": "330",
    "SuccessExitStatus": "0 143",
    "OOMPolicy": "continue",
    "KillMode": "mixed",
}
# Where fatctl's system unit departs from the reference, on purpose (see the unit's comments):
# it never stops restarting (a missing R2 mount is waited out by restarts; exit 78 still stops
# it), and its start timeout is systemd's default 90 s, OpenClaw's docs/vps.md advice for VPS
# hosts ("A longer startup timeout for slow hosts: `TimeoutStartSec=90`").
DEPARTURES = {"StartLimitIntervalSec": "0"}


def _settings(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.splitlines():
        key, eq, value = line.partition("=")
        if eq and not line.startswith("#"):
            out.setdefault(key, []).append(value)
    return out


def test_install_runs_only_openclaws_lifecycle_and_none_of_it_as_root() -> None:
    """Fails on the old script: it let npm run every dependency's install scripts, as root.

    npm installs with --ignore-scripts, then `npm rebuild openclaw` runs OpenClaw's own
    preinstall and postinstall (approved in package.json for an npm that blocks unapproved
    scripts), both as the throwaway INSTALL_UID in a tree root takes over only afterwards; a
    lifecycle left pending still fails the install before the launcher's first run."""
    assert tuple(int(p) for p in NPM_VERSION.split(".")) >= (11, 16, 0)  # the documented case
    script = render_install_script("2026.9.6", "24.21.0")
    code = "\n".join(ln for ln in script.splitlines() if not ln.lstrip().startswith("#"))
    assert f"\nINSTALL_UID={L.INSTALL_UID}\n" in code and L.INSTALL_UID != L.SERVICE_UID
    install = code[code.index("install_openclaw() {") : code.index("install_plugins() {")]
    approve = """'{"private": true, "allowScripts": {"openclaw@%s": true}}\\n'"""
    assert f'printf {approve} "$RUNTIME_VERSION"' in install
    assert 'local -a npm=(run_as "$INSTALL_UID" ' in install
    npm_install = install.index('"${npm[@]}" install "${opts[@]}" --omit=dev --ignore-scripts')
    rebuild = install.index('"${npm[@]}" rebuild "${opts[@]}" --foreground-scripts openclaw)')
    pending = install.index(".openclaw-lifecycle-pending")
    to_root = install.index('chown -hR 0:0 "$RUNTIME_DIR"')
    version = install.index(
        'run_as "$INSTALL_UID" "HOME=${home}" "${RUNTIME_DIR}/bin/openclaw" --version'
    )
    assert npm_install < rebuild < pending < to_root < version
    # npm itself is never started as root in this function.
    assert install.count("npm-cli.js") == 1


def test_gateway_unit_has_openclaws_reference_settings() -> None:
    unit = render_files(make_spec(STOCK))[f"/etc/systemd/system/{L.GATEWAY_UNIT}"].content
    seen = _settings(unit)
    for key, value in REFERENCE_SERVICE.items():
        assert seen.get(key) == [value], (key, seen.get(key))
    for key, value in DEPARTURES.items():
        assert seen.get(key) == [value], (key, seen.get(key))
    assert "TimeoutStartSec" not in seen and "StartLimitBurst" not in seen  # systemd's defaults
    environment = seen["Environment"]
    assert "OPENCLAW_SUPERVISOR_MODE=external" in environment
    assert "OPENCLAW_SERVICE_REPAIR_POLICY=external" in environment
