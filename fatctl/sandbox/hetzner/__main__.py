"""`python -m fatctl.sandbox.hetzner --state-dir D [--port P] [--action-delay S] ...`"""

from __future__ import annotations

import sys

from fatctl.sandbox.apiemu.process import common_parser, parse_faults, serve
from fatctl.sandbox.hetzner import EmulatorHandle, start_emulator


def main(argv: list[str] | None = None) -> int:
    parser = common_parser("python -m fatctl.sandbox.hetzner", default_rate=3600)
    parser.add_argument("--action-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    faults = parse_faults(args.faults)

    def start() -> EmulatorHandle:
        return start_emulator(
            args.state_dir,
            host=args.host,
            port=args.port,
            faults=faults,
            rate_limit=args.rate_limit,
            action_delay=args.action_delay,
            token=args.token,
        )

    def info(h: EmulatorHandle) -> dict[str, str]:
        return {"url": h.url, "admin_url": h.admin_url, "token": h.token}

    return serve("hetzner", start, info, args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
