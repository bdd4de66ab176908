"""`fatctl cost`: monthly Hetzner cost per agent beside its plan's price."""

from __future__ import annotations

import typer

from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

COLUMNS = ("agent", "plan", "state", "type", "server", "ips", "backups", "snapshots", "cost",
           "price", "margin", "source")  # fmt: skip


def cost_(json_out: JsonOpt = False) -> None:
    """Monthly Hetzner cost per agent and in total, beside the plan's price (the margin)."""
    from fatctl.cli.context import ctx
    from fatctl.services.cost.prices import cents
    from fatctl.services.cost.report import cost_document, cost_rows, fleet_cost

    c = ctx()
    report = fleet_cost(c.engine, c.settings)
    out = Output(json_out)
    if json_out:
        out.data(cost_document(report))
        return
    rows = cost_rows(report)
    t = report.totals
    if rows:
        rows.append({"agent": f"TOTAL ({t.agents})", "cost": cents(t.cost),
                     "price": cents(t.revenue), "margin": cents(t.margin)})  # fmt: skip
    out.table(rows, COLUMNS, title=f"monthly cost, {report.book.currency} net")


def register(app: typer.Typer) -> None:
    app.command("cost")(cost_)
