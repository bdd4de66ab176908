"""The stand-ins' two faces: the public app the boxes call, and a loopback-only admin app
through which tests and `fatctl sandbox` register keys and bots, inject updates and read records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException

from fatctl.sandbox.world import fingerprint
from fatctl.sandbox.world.model_api import ModelKeys
from fatctl.sandbox.world.model_api import router as model_router
from fatctl.sandbox.world.records import Recorder
from fatctl.sandbox.world.telegram_api import Bots
from fatctl.sandbox.world.telegram_api import router as telegram_router

RECORD_KINDS = frozenset({"model", "telegram", "sent"})


@dataclass
class World:
    recorder: Recorder = field(default_factory=Recorder)
    keys: ModelKeys = field(default_factory=ModelKeys)
    bots: Bots = field(default_factory=Bots)

    def public(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        app.include_router(model_router(self.recorder, self.keys))
        app.include_router(telegram_router(self.recorder, self.bots))
        return app

    def admin(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/model/keys")
        def add_key(body: dict[str, str]) -> dict[str, str]:
            key = _field(body, "key")
            self.keys.add(key)
            return {"fingerprint": fingerprint(key)}

        @app.post("/telegram/bots")
        def add_bot(body: dict[str, str]) -> dict[str, int]:
            try:
                return {"bot_id": self.bots.register(_field(body, "token"))}
            except ValueError:
                raise HTTPException(400, "token is not a bot token") from None

        @app.post("/telegram/updates")
        def inject(body: dict[str, Any]) -> dict[str, int]:
            try:
                bot, sender, text = int(body["bot_id"]), int(body["from_id"]), str(body["text"])
            except (KeyError, TypeError, ValueError):
                raise HTTPException(400, "need bot_id, from_id and text") from None
            return {"update_id": self.bots.inject(bot, sender, text)}

        @app.get("/records/{kind}")
        def records(kind: str) -> list[dict[str, Any]]:
            if kind not in RECORD_KINDS:
                raise HTTPException(404, f"no records of kind {kind}")
            return self.recorder.items(kind)

        @app.delete("/records")
        def clear() -> dict[str, bool]:
            self.recorder.clear()
            return {"cleared": True}

        return app


def _field(body: dict[str, str], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise HTTPException(400, f"need {name}")
    return value
