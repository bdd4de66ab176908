"""`python -m fatctl.sandbox.cloudflare --state-dir D [--port P] [--zone sandbox.test]
[--zone-plan sandbox.test=pro] ...`"""

from __future__ import annotations

import sys
from typing import Any

from fatctl.sandbox.apiemu.process import common_parser, parse_faults, serve
from fatctl.sandbox.cloudflare import CloudflareHandle, start_cloudflare_emulator


def main(argv: list[str] | None = None) -> int:
    parser = common_parser("python -m fatctl.sandbox.cloudflare", default_rate=1200)
    parser.add_argument("--zone", action="append", dest="zones", default=None)
    parser.add_argument("--account-id", default=None)
    parser.add_argument(
        "--zone-plan",
        action="append",
        default=[],
        metavar="ZONE=PLAN",
        help="a zone's plan: free (the default), pro, business, enterprise",
    )
    args = parser.parse_args(argv)
    plans = dict(item.partition("=")[::2] for item in args.zone_plan)
    faults = parse_faults(args.faults)

    def start() -> CloudflareHandle:
        return start_cloudflare_emulator(
            args.state_dir,
            host=args.host,
            port=args.port,
            zones=tuple(args.zones or ["sandbox.test"]),
            account_id=args.account_id,
            token=args.token,
            faults=faults,
            rate_limit=args.rate_limit,
            zone_plans=plans,
        )

    def info(h: CloudflareHandle) -> dict[str, Any]:
        zones = {z: h.zone_id(z) for z in (args.zones or ["sandbox.test"])}
        return {
            "url": h.url,
            "admin_url": h.admin_url,
            "token": h.token,
            "account_id": h.account_id,
            "zones": zones,
        }

    return serve("cloudflare", start, info, args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
