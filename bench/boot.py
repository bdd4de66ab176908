"""Boot N sandbox boxes concurrently from the golden image and print how long each took.

    python bench/boot.py [-n 3] [--image ROOTFS]

Prints, per box, the seconds from `create` to systemd up, cloud-init done, power-off and delete,
then the means. Root only; every box is deleted at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fatctl.sandbox import image
from fatctl.sandbox.nspawn_driver import NspawnBoxDriver

USER_DATA = "#cloud-config\nwrite_files:\n  - path: /root/bench\n    content: booted\n"
BASE_ID = 950_000


def one(driver: NspawnBoxDriver, n: int) -> dict[str, float]:
    server_id, start = BASE_ID + n, time.monotonic()
    driver.create(server_id, f"bench{n}", f"10.77.210.{n}", f"fd77:0:0:0:d2{n:02x}::1", USER_DATA)
    box = driver.box(server_id)
    box.wait_booted(300)
    times = {"systemd": time.monotonic() - start}
    box.run(["cloud-init", "status", "--wait"], timeout=300, check=False)
    times["cloud-init"] = time.monotonic() - start
    mark = time.monotonic()
    driver.power_off(server_id)
    times["power-off"] = time.monotonic() - mark
    mark = time.monotonic()
    driver.delete(server_id)
    times["delete"] = time.monotonic() - mark
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=3)
    parser.add_argument("--image", type=Path, default=None)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/boot.py: needs root (nspawn, network namespaces)", file=sys.stderr)
        return 1
    if not 1 <= args.n <= 200:
        print("bench/boot.py: -n must be 1..200", file=sys.stderr)
        return 2
    rootfs = args.image or image.ensure_golden_image(
        image.DEFAULT_RUNTIME,
        image.DEFAULT_NODE,
        extra_runtime_versions=image.DEFAULT_EXTRA_RUNTIMES,
    )
    with tempfile.TemporaryDirectory(prefix="fatctl-boot-bench-") as tmp:
        driver = NspawnBoxDriver(Path(tmp), rootfs)
        try:
            with ThreadPoolExecutor(max_workers=args.n) as pool:
                results = list(pool.map(lambda n: one(driver, n), range(1, args.n + 1)))
        finally:
            driver.delete_all()
    keys = list(results[0])
    print("box  " + "  ".join(f"{k:>10}" for k in keys))
    for n, row in enumerate(results, 1):
        print(f"{n:<4} " + "  ".join(f"{row[k]:>9.1f}s" for k in keys))
    print("mean " + "  ".join(f"{statistics.mean(r[k] for r in results):>9.1f}s" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
