"""The fatctl-managed block of an `authorized_keys` file, rendered and rewritten atomically.

fatctl owns only the lines between `# BEGIN fatctl managed` and `# END fatctl managed`; keys a
customer added by hand elsewhere in the file are kept byte for byte. The remote rewrite reads the
new block on stdin, splices it where the old block was (or appends it), and renames a temp file
over the original, so sshd never reads a half-written file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence

from fatctl.remote.commands.shell import script

BEGIN = "# BEGIN fatctl managed"
END = "# END fatctl managed"

# An authorized_keys entry: optional options, then a key type and its base64 body.
_KEY_RE = re.compile(
    r"^(?:\S+\s+)?(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)"
    r"|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)\s+([A-Za-z0-9+/=]+)(?:\s.*)?$"
)
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
CUSTOMER_GECOS = "customer shell access"  # as cloud-init creates the user at first boot


def key_body(line: str) -> str:
    """The base64 body of a public key line; raises ValueError for anything else."""
    match = _KEY_RE.fullmatch(line.strip())
    if not match or "\n" in line.strip():
        raise ValueError("not an OpenSSH public key line")
    return match.group(2)


def managed_block(keys: Sequence[str]) -> str:
    """The block text for `keys` (validated, one per line, duplicates dropped)."""
    seen: set[str] = set()
    lines = [BEGIN]
    for key in keys:
        body = key_body(key)
        if body not in seen:
            seen.add(body)
            lines.append(key.strip())
    lines.append(END)
    return "\n".join(lines) + "\n"


def merge_managed_block(existing: str, keys: Sequence[str], drop: Iterable[str] = ()) -> str:
    """What the remote rewrite produces, in Python: the reference the shell version is tested on."""
    dropped = {key_body(k) for k in drop}
    out: list[str] = []
    skipping = done = False
    for line in existing.splitlines():
        if line == BEGIN:
            if not done:
                out.extend(managed_block(keys).splitlines())
                done = True
            skipping = True
        elif line == END:
            skipping = False
        elif not skipping and not dropped.intersection(line.split()):
            out.append(line)
    if not done:
        out.extend(managed_block(keys).splitlines())
    return "\n".join(out) + "\n"


_AWK = (
    'BEGIN{n=split(drop,D," "); for(i=1;i<=n;i++) X[D[i]]=1}'
    " function emit(  l){while((getline l < nb)>0) print l; close(nb); done=1}"
    f' $0=="{BEGIN}"{{if(!done) emit(); skip=1; next}}'
    f' $0=="{END}"{{skip=0; next}}'
    " skip{next}"
    " {for(i=1;i<=NF;i++) if($i in X) next; print}"
    " END{if(!done) emit()}"
)


def _as_user(qu: str, inner: str) -> str:
    """Run `inner` with `user`'s own rights: directly when the login user is that user (the
    operator's own keys), through runuser when root runs it for somebody else."""
    quoted = shlex.quote(inner)
    return (
        f'if [ "$(id -u)" = "$(id -u {qu})" ]; then exec sh -c {quoted}; '
        f"else exec runuser -u {qu} -- sh -c {quoted}; fi"
    )


def rewrite_authorized_keys(user: str, drop: Iterable[str] = (), *, create: bool = False) -> str:
    """Replace the managed block in `user`'s authorized_keys with the block read from stdin.

    Every read and write happens as `user`, never as root: the file and its directory are the
    user's to change (the customer has a shell), and root following a symlink planted there
    would read or overwrite a file of root's (the host key, the gateway token) or change the
    modes of system directories. As the user, a planted link only reaches what the user could
    reach anyway, and a link to a root-only file fails the push.

    `create` adds the user (home, shell, locked password) when it does not exist yet: the
    customer user appears with the first customer key, whenever that is added.

    `drop` lists public keys to remove even outside the block (an operator key installed by
    cloud-init before fatctl managed the file); they are public, so the command line may hold them.
    """
    if not _USER_RE.fullmatch(user):
        raise ValueError(f"bad user name {user!r}")
    qu = shlex.quote(user)
    bodies = " ".join(sorted({key_body(k) for k in drop}))
    missing = (
        f"useradd --create-home --shell /bin/bash --comment {shlex.quote(CUSTOMER_GECOS)} {qu}"
        if create
        else f'{{ echo "no such user: {user}" >&2; exit 3; }}'
    )
    inner = script(
        "umask 077",
        f"h=$(getent passwd {qu} | cut -d: -f6)",
        'd="$h/.ssh"; f="$d/authorized_keys"',
        '[ -d "$d" ] || mkdir "$d"',
        'chmod 700 "$d"',
        'nb=$(mktemp "$d/.fatctl-block.XXXXXX"); tmp=$(mktemp "$d/.fatctl.XXXXXX")',
        'trap \'rm -f "$nb" "$tmp"\' EXIT',
        'cat > "$nb"',
        'src=/dev/null; if [ -f "$f" ]; then src="$f"; fi',
        f'awk -v nb="$nb" -v drop={shlex.quote(bodies)} {shlex.quote(_AWK)} "$src" > "$tmp"',
        'chmod 600 "$tmp"',
        # rename(2) replaces a symlink at $f itself, never the file it points to.
        'mv -f "$tmp" "$f"; rm -f "$nb"',
        "trap - EXIT",
    )
    return script(f"getent passwd {qu} >/dev/null || {missing}", _as_user(qu, inner))


def list_authorized_keys(user: str) -> str:
    """Print `user`'s authorized_keys (public data), empty when there is none or no such user.

    Read as the user, like the rewrite: through a link the customer planted, root would print
    one of its own files."""
    if not _USER_RE.fullmatch(user):
        raise ValueError(f"bad user name {user!r}")
    qu = shlex.quote(user)
    inner = script(
        f"h=$(getent passwd {qu} | cut -d: -f6)",
        'cat "$h/.ssh/authorized_keys" 2>/dev/null || true',
    )
    return script(f"getent passwd {qu} >/dev/null || exit 0", _as_user(qu, inner))
