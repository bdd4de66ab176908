"""`python -m fatctl.sandbox.world --state-dir D [--host H] [--port P] [--admin-port P]`:
the model and Telegram stand-ins on `--host` (the boxes' bridge), their admin on loopback."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from fatctl.sandbox.apiemu.process import common_parser, serve
from fatctl.sandbox.apiemu.runner import ServerThread
from fatctl.sandbox.world.app import World


@dataclass
class WorldServers:
    public: ServerThread
    admin: ServerThread

    def stop(self) -> None:
        self.public.stop()
        self.admin.stop()


def main(argv: list[str] | None = None) -> int:
    parser = common_parser("python -m fatctl.sandbox.world", default_rate=0)
    parser.add_argument("--admin-port", type=int, default=0)
    args = parser.parse_args(argv)
    world = World()

    def start() -> WorldServers:
        public = ServerThread(world.public(), args.host, args.port).start()
        try:
            admin = ServerThread(world.admin(), "127.0.0.1", args.admin_port).start()
        except BaseException:
            public.stop()
            raise
        return WorldServers(public, admin)

    def info(servers: WorldServers) -> dict[str, Any]:
        base = f"http://{args.host}:{servers.public.port}"
        return {
            "url": base,
            "model_base_url": f"{base}/v1",
            "telegram_api_root": base,
            "admin_url": f"http://127.0.0.1:{servers.admin.port}",
        }

    return serve("world", start, info, args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
