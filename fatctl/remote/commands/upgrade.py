"""Pure builders for one box's runtime upgrade: install beside, test-boot, switch, restart, health.

Everything is parameterised by a `BoxLayout`: where versions live (`/opt/openclaw/<version>` and
the `current` symlink on a real box), how the gateway is restarted and how health is asked. The
production layout is the one cloud-init builds (`templates/`); integration tests pass a layout
rooted in a test host's private /home, so these same commands run for real over real SSH there.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass

from fatctl.remote.commands.files import read_link, symlink_switch
from fatctl.remote.commands.shell import maybe_sudo, script
from fatctl.remote.commands.staged import in_order

# A version names a directory: no slashes, no leading dot or dash, nothing for the shell.
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")

# How long a command waits for the box's rollout lock: as long as an install may take, since
# the holder can only be an earlier fatctl's command still running after that fatctl died.
LOCK_WAIT_S = 900
# flock's exit status when the wait ran out (kept apart from the locked command's own statuses).
LOCK_TIMEOUT_EXIT = 175


def check_version(version: str) -> str:
    if not _VERSION_RE.fullmatch(version):
        raise ValueError(f"bad runtime version {version!r}")
    return version


@dataclass(frozen=True)
class BoxLayout:
    """Where a box keeps its runtime versions and how its gateway is managed.

    `install` and `test_boot` are shell templates with `{version}` and `{root}` placeholders,
    so the same engine drives the real install script or a test host's one. The rendered
    `fat-install-runtime` installs FAT_RUNTIME_VERSION when it is set (the version it was
    rendered for otherwise), so any box's script installs any target version. A box provisioned
    before that script change still has the pinned one: `fatctl converge` delivers the current
    script (it is one of the rendered box files) before such a box can be upgraded.
    """

    root: str = "/opt/openclaw"
    install: str = "FAT_RUNTIME_VERSION={version} /usr/local/sbin/fat-install-runtime --no-switch"
    test_boot: str = "{root}/{version}/bin/openclaw --version"
    restart: str = "systemctl restart --no-pager openclaw-gateway.service"
    health: str = "fat-health --json"
    # Prints when (epoch seconds) the running gateway started; empty when it is not running.
    started: str = (
        "t=$(systemctl show -p ExecMainStartTimestamp --value openclaw-gateway.service); "
        '[ -z "$t" ] || date -d "$t" +%s'
    )
    sudo: bool = True  # /opt and systemctl need root; a test layout in $HOME does not
    # Held by every command that reads or moves the runtime (see `locked`). In a directory only
    # root can enter: /run/lock is world-writable, so the customer's shell could create the lock
    # file first and hold it, stalling every upgrade of their box for the full wait. /run is
    # emptied by a reboot (which also ends any holder).
    lock: str = "/run/fat/rollout.lock"

    def version_dir(self, version: str) -> str:
        return f"{self.root}/{check_version(version)}"

    @property
    def current(self) -> str:
        return f"{self.root}/current"

    def _fill(self, template: str, version: str) -> str:
        return template.format(version=check_version(version), root=shlex.quote(self.root))

    def wrap(self, command: str) -> str:
        return maybe_sudo(command, needed=self.sudo)


def locked(layout: BoxLayout, command: str, wait_s: int = LOCK_WAIT_S) -> str:
    """`command` while holding the box's rollout lock (util-linux `flock`, on every Debian box).

    One fatctl at a time works on a box (the database lease), but a fatctl killed mid-step does
    not stop its remote command: sshd leaves a session's processes running when the client goes.
    Every command that reads or moves the runtime takes this lock, so the step a resumed rollout
    runs waits for such an orphan to finish and then sees what it did, instead of racing it (two
    installs of one version, or a gateway restarted by both). `-o`: the lock is not inherited by
    what the command starts (a gateway outliving it would hold the lock for good)."""
    lock = shlex.quote(layout.lock)
    where = shlex.quote(posixpath.dirname(layout.lock) or "/")
    held = (
        f"install -d -m 0700 {where} && "
        f"flock -o -w {wait_s} -E {LOCK_TIMEOUT_EXIT} {lock} sh -c {shlex.quote(command)}"
    )
    why = f"rollout lock {layout.lock} still held after {wait_s}s (an earlier fatctl's command?)"
    return (
        f"{held} || {{ rc=$?; [ $rc -ne {LOCK_TIMEOUT_EXIT} ] || echo {shlex.quote(why)} >&2; "
        "exit $rc; }"
    )


def _read_current(layout: BoxLayout) -> str:
    return f't=$({read_link(layout.current)}); basename "${{t:-}}" 2>/dev/null'


def _install(layout: BoxLayout, version: str) -> str:
    return script(f"mkdir -p {shlex.quote(layout.root)}", layout._fill(layout.install, version))


def _verify(layout: BoxLayout, version: str) -> str:
    marker = shlex.quote(f"{layout.version_dir(version)}/.installed")
    return script(
        f'[ -f {marker} ] || {{ echo "{version} is not fully installed" >&2; exit 3; }}',
        layout._fill(layout.test_boot, version),
    )


def _switch(layout: BoxLayout, version: str) -> str:
    return script(
        f"[ -d {shlex.quote(layout.version_dir(version))} ]",
        symlink_switch(layout.current, check_version(version)),
    )


def current_version(layout: BoxLayout) -> str:
    """Print the version `current` points at (empty output when there is none)."""
    return layout.wrap(locked(layout, _read_current(layout)))


def switch(layout: BoxLayout, version: str) -> str:
    """Point `current` at `version` atomically (relative link, as the install script makes)."""
    return layout.wrap(locked(layout, _switch(layout, version)))


def restart(layout: BoxLayout) -> str:
    return layout.wrap(locked(layout, layout.restart))


def activation_steps(layout: BoxLayout, version: str, install_first: bool) -> list[tuple[str, str]]:
    """The activation's stages in order, each (name, shell command) as `activation` runs it
    (bare: no lock, no sudo); a failure is attributed by the name."""
    version = check_version(version)
    first = [("install", _install(layout, version)), ("test boot", _verify(layout, version))]
    then = [(f"switch to {version}", _switch(layout, version)), ("restart", layout.restart)]
    return [*first, *then] if install_first else then


def activation(layout: BoxLayout, version: str, install_first: bool) -> str:
    """[Install beside and test-boot,] switch and restart as one script under one hold of the
    lock: each stage announced on stdout (`staged`), the first failing one ends it with its
    status, so `current` moves only after a good test boot and the caller knows which stage
    failed. One SSH session instead of four (bench/rollout.py: a session costs 50-90 ms here)."""
    steps = activation_steps(layout, version, install_first)
    return layout.wrap(locked(layout, in_order(*steps)))


def restart_if_stale(layout: BoxLayout) -> str:
    """Restart a gateway that started before `current` was last switched (or whose start time
    is unknown, or that is not running) and print `restarted`; print `fresh` and leave it alone
    otherwise. A step resumed after the switch needs this: a stale gateway still runs the old
    version's code, a fresh one was restarted by the step that died (or by its orphan)."""
    return layout.wrap(
        locked(
            layout,
            script(
                f"l=$(stat -c %Y {shlex.quote(layout.current)})",
                f"s=$({layout.started}) || s=",
                'if [ -n "$s" ] && [ "$s" -ge "$l" ]; then echo fresh; '
                f"else {layout.restart}; echo restarted; fi",
            ),
        )
    )


def health(layout: BoxLayout) -> str:
    return layout.wrap(layout.health)


def prune(layout: BoxLayout, keep: int, protect: tuple[str, ...] = ()) -> str:
    """Keep `keep` installed versions: `current` and `protect` always, then the newest others.

    Versions are ordered by their `.installed` marker's time (install order), so a hotfix of an
    older number installed last counts as the newest.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    must = " ".join(shlex.quote(check_version(v)) for v in protect)
    return layout.wrap(
        script(
            f"cd {shlex.quote(layout.root)}",
            'cur=$(basename "$(readlink current 2>/dev/null || echo none)")',
            f"must=\" $(printf '%s\\n' \"$cur\" {must} | sort -u | tr '\\n' ' ')\"",
            'n=0; for v in $must; do if [ -f "$v/.installed" ]; then n=$((n+1)); fi; done',
            # Newest first by marker time (the loop runs in the pipe's subshell, `n` with it);
            # `current` is itself a link to a version dir: the glob sees it as one more version.
            "ls -1t -- ./*/.installed 2>/dev/null | while IFS= read -r m; do "
            "v=${m%/.installed}; v=${v#./}; "
            '[ -L "$v" ] && continue; case "$must" in *" $v "*) continue;; esac; '
            f'n=$((n+1)); if [ "$n" -gt {keep} ]; then rm -rf -- "$v"; echo "pruned $v"; fi; done',
        )
    )
