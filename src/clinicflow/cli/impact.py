"""`clinicflow impact report`: hours and money each automation saved, week by week."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from clinicflow.cli.runtime import Runtime
from clinicflow.engine import EXTRA_AUTOMATIONS_ENV, Registry
from clinicflow.impact.ledger import totals, weekly_lines
from clinicflow.impact.proposals import portfolio
from clinicflow.impact.report import (
    csv_text,
    html_report,
    line_cells,
    portfolio_cells,
    portfolio_rows,
    trend_rows,
)
from clinicflow.impact.trends import practice_trends

app = typer.Typer(help="The impact ledger: what each automation saved.", no_args_is_help=True)


@app.command("report")
def report(
    weeks: Annotated[int, typer.Option(min=1, max=520, help="Weeks back, this one included")] = 4,
    json_output: Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout")] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write the lines as CSV here", dir_okay=False)
    ] = None,
    html_path: Annotated[
        Path | None,
        typer.Option("--html", help="Also write an HTML report here (for a board meeting)"),
    ] = None,
    pdf_path: Annotated[
        Path | None,
        typer.Option("--pdf", help="Also write a PDF report here (for a board meeting)"),
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Report as of this ISO instant (default: now)")
    ] = None,
) -> None:
    """Per automation and week: runs, units, staff hours and money saved, revenue recovered."""
    rt = Runtime.load(now=now)
    registry = Registry.load(extra=os.environ.get(EXTRA_AUTOMATIONS_ENV))
    with rt.db.transaction() as session:
        lines = weekly_lines(session, registry, rt.settings, weeks=weeks, now=rt.clock.now())
        standings = portfolio(session, registry, rt.settings, now=rt.clock.now())
        trends = practice_trends(session, rt.settings, now=rt.clock.now(), weeks=weeks)
    proposals = portfolio_rows(standings)
    sums = totals(lines)
    title = f"{rt.settings.practice_name}: what automation saved"
    if csv_path is not None:
        csv_path.write_text(csv_text(lines), encoding="utf-8")
        rt.console.print(f"wrote {len(lines)} line(s) to {csv_path}", highlight=False)
    if html_path is not None:
        html_path.write_text(
            html_report(lines, title=title, weeks=weeks, trends=trends), encoding="utf-8"
        )
        rt.console.print(f"wrote the report to {html_path}", highlight=False)
    if pdf_path is not None:
        from clinicflow.impact.pdf import pdf_report  # fpdf2 is loaded only when asked for

        pdf_path.write_bytes(
            pdf_report(lines, title=title, weeks=weeks, trends=trends, standings=standings)
        )
        rt.console.print(f"wrote the report to {pdf_path}", highlight=False)
    if json_output:
        rt.out(
            {
                "weeks": weeks,
                "hours_saved": round(sums.hours, 2),
                "money_saved": sums.money_cents / 100,
                "revenue_recovered": sums.revenue_cents / 100,
                "runs": sums.runs,
                "lines": [
                    {
                        "week_of": line.week_of.isoformat(),
                        "automation": line.automation,
                        "runs": line.run_ids,
                        "units": {u.unit: u.count for u in line.units},
                        "minutes_per_unit": {u.unit: u.minutes_each for u in line.units},
                        "sources": {u.unit: u.source for u in line.units},
                        "minutes_saved": round(line.minutes, 2),
                        "hours_saved": round(line.hours, 2),
                        "role": line.role,
                        "money_saved": line.money_cents / 100,
                        "slots_booked": line.slots_booked,
                        "revenue_recovered": line.revenue_cents / 100,
                    }
                    for line in lines
                ],
                "portfolio": proposals,
                "trends": {
                    "baseline_noshow_rate": trends.baseline,
                    "noshows_avoided_value": trends.avoided_cents / 100,
                    "weeks": [
                        {
                            "week_of": n.week_of.isoformat(),
                            "noshows": n.count,
                            "visits_with_outcome": n.of,
                            "confirmed": c.count,
                            "reminded_asking_reply": c.of,
                            "noshows_avoided": round(a.avoided, 2),
                            "noshows_avoided_value": a.revenue_cents / 100,
                        }
                        for n, c, a in zip(
                            trends.rates["No-show rate"],
                            trends.rates["Confirmation rate"],
                            trends.avoided,
                            strict=True,
                        )
                    ],
                },
            }
        )
        return
    table = Table(title=f"Saved by automation, the last {weeks} week(s)")
    for column in ("week of", "automation", "runs", "units", "hours", "money", "revenue"):
        table.add_column(column, justify="right" if column in ("runs", "hours") else "left")
    for line in lines:
        table.add_row(*line_cells(line))
    rt.console.print(table)
    rt.console.print(
        f"total: {sums.hours:.1f} staff hours saved, ${sums.money_cents / 100:,.2f}; "
        f"${sums.revenue_cents / 100:,.2f} of visits recovered; {sums.runs} runs",
        highlight=False,
    )
    rates = Table(title="No-show and confirmation rates")
    for column in ("week of", "no-show rate", "confirmation rate", "no-shows avoided"):
        rates.add_column(column)
    for week in trend_rows(trends):
        rates.add_row(week["week_of"], week["noshow"], week["confirmed"], week["avoided"])
    rt.console.print(rates)
    rt.console.print(
        f"against the {trends.baseline:.0%} no-show baseline: "
        f"${trends.avoided_cents / 100:,.2f} of visits kept that would have been missed",
        highlight=False,
    )
    if proposals:
        board = Table(title="Portfolio")
        for column in ("#", "process", "owner", "state", "estimate/yr", "actual", "ratio", "flag"):
            board.add_column(column)
        for row in proposals:
            board.add_row(*portfolio_cells(row))
        rt.console.print(board)
