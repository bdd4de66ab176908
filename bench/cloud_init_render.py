"""Print what rendering and validating user-data costs: per variant, size and wall time.

Rendering is on the provisioning path of every agent, validation too (it runs the real
cloud-init, shellcheck, systemd-analyze, caddy and sshd), so both are measured here.

    python bench/cloud_init_render.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The variant matrix lives with the tests; run from anywhere, import it from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_init.render import MAX_USER_DATA, render_user_data
from cloud_init.validate import validate_user_data
from tests.unit.cloud_init.variants import VARIANTS, make_spec, real_host_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20, help="renders per variant")
    args = parser.parse_args()
    key = real_host_key(Path(tempfile.mkdtemp(prefix="bench-hostkey-")))
    render_ms, validate_s, sizes = [], [], []
    print(f"{'variant':48} {'bytes':>6} {'render ms':>9} {'validate s':>10} problems")
    for variant in VARIANTS:
        spec = make_spec(variant, host_keys=(key,))
        start = time.perf_counter()
        for _ in range(args.repeat):
            text = render_user_data(spec)
        per_render = (time.perf_counter() - start) / args.repeat * 1000
        start = time.perf_counter()
        problems = validate_user_data(text)
        took = time.perf_counter() - start
        size = len(text.encode())
        render_ms.append(per_render)
        validate_s.append(took)
        sizes.append(size)
        print(f"{variant.id:48} {size:6d} {per_render:9.2f} {took:10.2f} {len(problems)}")
    print(
        f"\n{len(VARIANTS)} variants: user-data {min(sizes)}..{max(sizes)} bytes "
        f"(limit {MAX_USER_DATA}, headroom {MAX_USER_DATA - max(sizes)}); "
        f"render median {statistics.median(render_ms):.2f} ms; "
        f"validate median {statistics.median(validate_s):.2f} s, max {max(validate_s):.2f} s"
    )


if __name__ == "__main__":
    main()
