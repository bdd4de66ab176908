"""A stand-in for the `openclaw` CLI's backup commands, as OpenClaw 2026.9.6 documents them
(docs/cli/backup.md, docs/install/backups.md, docs/reference/database-schemas/storage-changes.md)
and its dist prints them with `--json` (`writeRuntimeJson(runtime, result)` in
dist/backup-BZ3s73jc.mjs and dist/backup-restore-D87X_hF_.mjs):

- `backup create --output DIR --verify --json`: "a timestamped `.tar.gz` covering state,
  config, credentials ..."; "Existing archive files are never overwritten. Output paths inside
  the source state/workspace trees are rejected"; the archive "embeds a schema-version-1
  `manifest.json`" laid out as `<archive-root>/manifest.json` and
  `<archive-root>/payload/posix/<absolute-source-path-without-leading-slash>/...`, each asset
  with "its `kind`, original `sourcePath`, and `archivePath` inside the tarball". Prints
  `{archivePath, assets, skipped, verified, warnings, ...}`. Plugin `node_modules` (the box's
  `npm/`) are not archived.
- `backup verify ARCHIVE --json`: "checks that the archive contains exactly one root manifest
  ... confirms every manifest-declared payload exists".
- `backup restore ARCHIVE --target T --json`: "The target must not exist or must be an empty
  directory, and it cannot be inside the live state directory"; "The extracted layout retains
  the archive root, manifest, and `payload/` paths exactly as recorded"; prints
  `{...verified, targetPath, archiveRoot, entryCount, warnings}`.
- `database preflight FILE --json`: `{schema: "openclaw.state-schema-preflight.v1", status}`,
  status one of exact | startup-repairable | migration-required | incompatible | indeterminate
  (STUB_PREFLIGHT forces one; a missing file is indeterminate).
- `doctor --non-interactive`: exit 0 (STUB_DOCTOR_FAIL=1: exit 1).
- STUB_CREATE_FAIL=1: `backup create` fails ("An archive write that produces no data for five
  minutes fails", docs/cli/backup.md).

Every call is appended to `$STUB_LOG` with the environment it ran in.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path

STATE = Path(os.environ.get("OPENCLAW_STATE_DIR", "/nonexistent"))
CONFIG = Path(os.environ.get("OPENCLAW_CONFIG_PATH", "/nonexistent"))


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve() == root.resolve() or root.resolve() in path.resolve().parents


def _posix(path: Path, root: str) -> str:
    return f"{root}/payload/posix/{str(path).lstrip('/')}"


def _manifest(archive: Path) -> tuple[str, dict[str, object]]:
    with tarfile.open(archive, "r:gz") as tar:
        roots = [m.name for m in tar.getmembers() if m.name.endswith("/manifest.json")
                 and m.name.count("/") == 1]  # fmt: skip
        if len(roots) != 1:
            _fail("archive must contain exactly one root manifest")
        data = json.loads(tar.extractfile(roots[0]).read())  # type: ignore[union-attr]
        names = {m.name for m in tar.getmembers()}
        for asset in data["assets"]:
            if asset["archivePath"] not in names:
                _fail(f"payload missing: {asset['archivePath']}")
    return roots[0].split("/")[0], data


def create(args: list[str]) -> None:
    if os.environ.get("STUB_CREATE_FAIL"):
        _fail("An archive write that produced no data for five minutes failed")
    out = Path(args[args.index("--output") + 1])
    if _inside(out, STATE):
        _fail("output path is inside the state directory")
    root = time.strftime("%Y-%m-%dT%H-%M-%S.000+00-00") + "-openclaw-backup"
    archive = out / f"{root}.tar.gz"
    if archive.exists():
        _fail("refusing to overwrite an existing archive")
    assets = [{"kind": "state", "sourcePath": str(STATE), "archivePath": _posix(STATE, root)}]
    if CONFIG.is_file():
        assets.append({"kind": "config", "sourcePath": str(CONFIG),
                       "archivePath": _posix(CONFIG, root)})  # fmt: skip
    manifest = {"schemaVersion": 1, "archiveRoot": root, "assets": assets,
                "paths": {"stateDir": str(STATE)}}  # fmt: skip
    with tarfile.open(archive, "w:gz") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo(f"{root}/manifest.json")
        info.size = len(data)
        plugins = _posix(STATE / "npm", root)
        tar.add(str(STATE), _posix(STATE, root), filter=lambda m: None if (
            m.name == plugins or m.name.startswith(plugins + "/")) else m)  # fmt: skip
        if CONFIG.is_file():
            tar.add(str(CONFIG), _posix(CONFIG, root))
        tar.addfile(info, io.BytesIO(data))
    print(json.dumps({"archivePath": str(archive), "assets": assets, "skipped": [],
                      "verified": "--verify" in args, "warnings": [], "dryRun": False,
                      "skippedVolatileCount": 0}))  # fmt: skip


def verify(args: list[str]) -> None:
    root, manifest = _manifest(Path(args[0]))
    print(json.dumps({"ok": True, "archivePath": args[0], "archiveRoot": root,
                      "assets": manifest["assets"]}))  # fmt: skip


def restore(args: list[str]) -> None:
    archive, target = Path(args[0]), Path(args[args.index("--target") + 1])
    if _inside(target, STATE):
        _fail("target is inside the live state directory")
    if target.exists() and any(target.iterdir()):
        _fail("target is not empty")
    root, manifest = _manifest(archive)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
        count = len(tar.getmembers())
    print(json.dumps({"archivePath": str(archive), "archiveRoot": root, "entryCount": count,
                      "targetPath": str(target), "assets": manifest["assets"],
                      "warnings": ["Restoring an archive is time travel."]}))  # fmt: skip


def preflight(args: list[str]) -> None:
    status = os.environ.get("STUB_PREFLIGHT") or (
        "exact" if Path(args[0]).is_file() else "indeterminate"
    )
    print(json.dumps({"schema": "openclaw.state-schema-preflight.v1",
                      "databasePath": args[0], "status": status}))  # fmt: skip


def main(argv: list[str]) -> None:
    with open(os.environ["STUB_LOG"], "a") as log:
        kept = ("HOME", "OPENCLAW_STATE_DIR", "OPENCLAW_SERVICE_REPAIR_POLICY")
        env = {k: os.environ.get(k, "") for k in kept}
        log.write(json.dumps({"argv": argv, "env": env}) + "\n")
    match argv:
        case ["backup", "create", *rest]:
            create(rest)
        case ["backup", "verify", *rest]:
            verify(rest)
        case ["backup", "restore", *rest]:
            restore(rest)
        case ["database", "preflight", *rest]:
            preflight(rest)
        case ["doctor", "--non-interactive"]:
            sys.exit(1 if os.environ.get("STUB_DOCTOR_FAIL") else 0)
        case _:
            _fail(f"stub openclaw: unknown command {argv}")


if __name__ == "__main__":
    main(sys.argv[1:])
