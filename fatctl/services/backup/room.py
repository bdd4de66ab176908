"""How much free disk opening a backup needs: a pure rule, mirrored by the box's `fat-backup`
(`room_to_fetch_kb`, `room_to_unpack_kb`; `fat-backup room-plan` prints them for the parity
test) which refuses `verify` and `restore` (and so the restores inside rebuild, resume and
move) in one line before it downloads or unpacks what would not fit.

Opening happens in the scratch directory beside the state (`BACKUP_DIR`, same filesystem):
1. fetch: the encrypted archive is downloaded and decrypted beside it, so twice its size;
2. unpack: the encrypted copy is gone, the plain archive stays while OpenClaw extracts it.
   The extracted size is read from the gzip trailer (`gzip -l`, exact below 4 GiB) rather than
   guessed from the archive: SQLite state compresses far better than a fixed factor such as
   2.5x assumes (bench/backup_state.py: 200 sessions, a 1.97 MiB archive, 21 MiB restored,
   10.7x; 3 sessions, 0.10 MiB and 2.6 MiB, 26x). A trailer that cannot be right (smaller than
   the archive: wrapped at 4 GiB) falls back to a factor.
Each adds files' block rounding (an eighth) and a margin the rest of the box keeps running on,
the same margin `fat-backup run` keeps.
"""

from __future__ import annotations

KIB = 1024
MARGIN_KB = 512 * KIB  # what `fat-backup run` also leaves free
FALLBACK_FACTOR = 30  # unpacked/archive when the trailer cannot be believed (measured 10.7-26)


def _kb(n_bytes: int) -> int:
    return (n_bytes + KIB - 1) // KIB


def room_to_fetch_kb(sealed_bytes: int) -> int:
    """KiB free needed before downloading an archive of `sealed_bytes`: it and its decryption."""
    return _kb(2 * sealed_bytes) + MARGIN_KB


def room_to_unpack_kb(plain_bytes: int, unpacked_bytes: int) -> int:
    """KiB free needed before unpacking a plain archive whose gzip trailer says
    `unpacked_bytes` (the archive itself is already on disk)."""
    if unpacked_bytes < plain_bytes:
        unpacked_bytes = FALLBACK_FACTOR * plain_bytes
    return _kb(unpacked_bytes + unpacked_bytes // 8) + MARGIN_KB
