"""`fatctl sandbox up|down|status`: the local cloud (fatctl.sandbox.cloud). Thin: parse, call,
render. `up` prints how to point fatctl at it (source its env file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

app = typer.Typer(
    help="The local sandbox cloud (emulators, S3, nspawn boxes).", no_args_is_help=True
)


def _state() -> Path:
    from fatctl.sandbox.cloud import sandbox_dir

    return sandbox_dir(ctx().settings.data_dir)


@app.command("up")
def up(
    boxes: Annotated[
        bool, typer.Option("--boxes/--no-boxes", help="Real nspawn boxes (root) or API only.")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Start the emulators, S3 and (as root) the box driver; write sandbox.env."""
    from fatctl.sandbox.cloud import ENV_FILE
    from fatctl.sandbox.cloud import up as run

    state = _state()
    env = run(state, boxes=boxes)
    path = state / ENV_FILE
    out = Output(json_out)
    if json_out:
        out.data({"env_file": str(path), "boxes": boxes, "domain": env["FATCTL_DOMAIN"]})
        return
    out.message(f"sandbox up ({'with nspawn boxes' if boxes else 'API only'}); settings in {path}")
    out.message(f"use it:  set -a; . {path}; set +a")
    out.message(f"then:    fatctl keys add --operator --file {env['FATCTL_OPERATOR_KEY_FILE']}.pub")


@app.command("down")
def down(json_out: JsonOpt = False) -> None:
    """Stop everything `up` started (by pid) and delete the boxes."""
    from fatctl.sandbox.cloud import down as run

    stopped = run(_state())
    out = Output(json_out)
    if json_out:
        out.data({"stopped": stopped})
    else:
        out.message("stopped: " + (", ".join(stopped) or "nothing was running"))


@app.command("status")
def status(json_out: JsonOpt = False) -> None:
    """What of the sandbox runs now."""
    from fatctl.sandbox.cloud import status as run

    rows = [{"component": c.name, "pid": c.pid or "-", "url": c.url or "(stopped)"}
            for c in run(_state())]  # fmt: skip
    Output(json_out).table(rows, ("component", "pid", "url"), title="sandbox")


@app.command("model-key")
def model_key() -> None:
    """Issue a key from the sandbox's model provider (prints it once; store it with secrets set)."""
    import sys

    from fatctl.sandbox.world.client import admin_url, issue_model_key

    sys.stdout.write(issue_model_key(admin_url(_state())) + "\n")


@app.command("telegram-bot")
def telegram_bot(json_out: JsonOpt = False) -> None:
    """Issue a bot token from the sandbox's Telegram (prints it once, with the bot's id)."""
    from fatctl.sandbox.world.client import admin_url, issue_bot_token

    token, bot_id = issue_bot_token(admin_url(_state()))
    Output(json_out).record({"bot_id": bot_id, "token": token}, title="sandbox bot")


@app.command("telegram-send")
def telegram_send(
    bot_id: Annotated[str, typer.Argument(help="The bot's id (the token's number).")],
    text: Annotated[str, typer.Argument(help="The message.")],
    sender: Annotated[str, typer.Option("--from", help="The Telegram user id sending it.")],
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for the reply.")] = 60.0,
    json_out: JsonOpt = False,
) -> None:
    """Send a Telegram message to a bot as a user and show the agent's reply (exit 1: none)."""
    import math
    import time

    from fatctl.errors import BadInput, FatctlError
    from fatctl.sandbox.world.client import admin_url, send_as_user, wait_record
    from fatctl.serving import sender as valid_sender

    _, user = valid_sender(sender, "telegram")
    _, bot = valid_sender(bot_id, "telegram")  # a bot's id has a user id's shape
    if not text.strip() or len(text) > 4096:
        raise BadInput("the message must be 1 to 4096 characters (Telegram's limit)")
    if not (math.isfinite(wait) and 0 < wait <= 3600):
        raise BadInput("--wait must be between 0 and 3600 seconds")
    admin = admin_url(_state())
    started, sent_at = time.monotonic(), time.time()
    send_as_user(admin, int(bot), int(user), text)

    def reply(item: dict[str, Any]) -> bool:
        return item["bot"] == int(bot) and item["chat_id"] == int(user) and item["at"] >= sent_at

    found = wait_record(admin, "sent", reply, wait)
    if found is None:
        raise FatctlError(f"no reply from bot {bot} to {user} within {wait:.0f}s")
    took = round(time.monotonic() - started, 1)
    Output(json_out).record({"from": user, "sent": text, "reply": found["text"], "seconds": took},
                            title="telegram round trip")  # fmt: skip
