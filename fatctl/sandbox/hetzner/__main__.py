"""`python -m fatctl.sandbox.hetzner --state-dir D [--port P] [--action-delay S] ...`"""

from __future__ import annotations

import importlib
import sys

from fatctl.sandbox.apiemu.process import bad_input, common_parser, parse_faults, serve
from fatctl.sandbox.driver import BoxDriver
from fatctl.sandbox.hetzner import EmulatorHandle, start_emulator


def load_driver(spec: str) -> BoxDriver:
    """`package.module:factory` -> factory(); lets `fatctl sandbox up` plug in nspawn boxes."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise bad_input(f"--driver must look like module:factory, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise bad_input(f"cannot load driver {spec!r}: {exc}") from None
    return factory()


def main(argv: list[str] | None = None) -> int:
    parser = common_parser("python -m fatctl.sandbox.hetzner", default_rate=3600)
    parser.add_argument("--action-delay", type=float, default=0.0)
    parser.add_argument(
        "--driver", default=None, help="module:factory returning a BoxDriver (default: no boxes)"
    )
    args = parser.parse_args(argv)
    faults = parse_faults(args.faults)
    driver = load_driver(args.driver) if args.driver else None

    def start() -> EmulatorHandle:
        return start_emulator(
            args.state_dir,
            host=args.host,
            port=args.port,
            faults=faults,
            driver=driver,
            rate_limit=args.rate_limit,
            action_delay=args.action_delay,
            token=args.token,
        )

    def info(h: EmulatorHandle) -> dict[str, str]:
        return {"url": h.url, "admin_url": h.admin_url, "token": h.token}

    return serve("hetzner", start, info, args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
