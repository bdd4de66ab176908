"""Writing a render to a directory, all or nothing: `user-data` plus `files/<box path>`.

The tree is built in a temporary sibling and renamed into place, so a failed run leaves the
previous render (or nothing) behind, never a mix. An existing directory is replaced only when
it is itself a previous render (it carries the marker file), never an unrelated directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from cloud_init.files import RenderedFile
from fatctl.errors import BadInput

MARKER = ".fatctl-render"


def write_render(out_dir: Path, user_data: str, files: dict[str, RenderedFile]) -> list[Path]:
    """Write the render into `out_dir`; returns the written paths (relative to `out_dir`)."""
    out_dir = out_dir.absolute()
    reusable = not out_dir.exists() or (out_dir / MARKER).exists()
    if not reusable and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BadInput(f"{out_dir} exists and is not a previous render; choose another --out")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        written = [_write(staging, Path("user-data"), user_data, 0o644)]
        for path, item in sorted(files.items()):
            written.append(
                _write(staging, Path("files") / path.lstrip("/"), item.content, item.mode)
            )
        (staging / MARKER).write_text("rendered by fatctl; safe to delete\n", encoding="utf-8")
        staging.chmod(0o755)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def _write(root: Path, rel: Path, content: str, mode: int) -> Path:
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    target.chmod(mode)
    return rel


def _swap_in(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    # Move the old render aside first, so at every instant out_dir is a complete render or absent.
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    os.rename(out_dir, old)
    os.rename(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)
