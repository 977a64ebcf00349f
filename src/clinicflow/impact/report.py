"""The impact ledger as tables, CSV and a server-side SVG chart (pure: lines in, text out).

The terminal report, the HTML report and the web app's Impact page all render these, so their
totals are the same sums of the same lines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from html import escape

from clinicflow.impact.ledger import WeekLine, totals
from clinicflow.impact.proposals import Standing
from clinicflow.impact.trends import Trends, WeekRate

CSV_COLUMNS = (
    "week_of",
    "automation",
    "runs",
    "units",
    "minutes_saved",
    "hours_saved",
    "role",
    "hourly_cost",
    "money_saved",
    "slots_booked",
    "revenue_recovered",
    "run_ids",
)
# Colours that stay apart for the common kinds of colour blindness (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def units_text(line: WeekLine) -> str:
    """ "confirmation_received 12 x 3 min (automation estimate); ..." """
    return "; ".join(
        f"{u.unit} {u.count} x {u.minutes_each:g} min ({u.source})" for u in line.units
    )


def line_cells(line: WeekLine) -> tuple[str, ...]:
    """One line as a table shows it: week, automation, runs, units, hours, money, revenue."""
    return (
        line.week_of.isoformat(),
        line.automation,
        str(len(line.run_ids)),
        units_text(line),
        f"{line.hours:.1f}",
        f"${line.money_cents / 100:,.2f}",
        f"${line.revenue_cents / 100:,.2f}",
    )


# How the figures were made, printed under every report (HTML, PDF).
METHOD_NOTE = (
    "Minutes per unit are each automation's estimate unless the practice set its own (the "
    "source is named with each unit); money is minutes x the loaded hourly cost of the role "
    "that did the task before."
)


def csv_text(lines: Sequence[WeekLine]) -> str:
    """Every line as CSV, with the runs behind it (ids space-separated)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow(
            [
                line.week_of.isoformat(),
                line.automation,
                len(line.run_ids),
                units_text(line),
                f"{line.minutes:.1f}",
                f"{line.hours:.2f}",
                line.role,
                f"{line.hourly_cost:.2f}",
                f"{line.money_cents / 100:.2f}",
                line.slots_booked,
                f"{line.revenue_cents / 100:.2f}",
                " ".join(str(i) for i in line.run_ids),
            ]
        )
    return out.getvalue()


def hours_chart_svg(lines: Sequence[WeekLine], *, width: int = 720, height: int = 260) -> str:
    """Hours saved per week, one bar per automation in each week (an SVG element)."""
    return bar_chart_svg(
        lines,
        lambda line: line.hours,
        unit="h",
        what="Staff hours saved",
        width=width,
        height=height,
    )


def money_chart_svg(lines: Sequence[WeekLine], *, width: int = 720, height: int = 260) -> str:
    """Money saved per week (staff time at its cost), one bar per automation in each week."""
    return bar_chart_svg(
        lines,
        lambda line: line.money_cents / 100,
        unit="$",
        what="Money saved",
        width=width,
        height=height,
    )


def bar_chart_svg(
    lines: Sequence[WeekLine],
    value_of: Callable[[WeekLine], float],
    *,
    unit: str,
    what: str,
    width: int = 720,
    height: int = 260,
) -> str:
    """`value_of` each line per week, one bar per automation in each week (an SVG element)."""
    weeks = sorted({line.week_of for line in lines})
    names = sorted({line.automation for line in lines if value_of(line) > 0})
    if not weeks or not names:
        return f'<svg class="chart" role="img" aria-label="{escape(what)}: none yet"></svg>'
    hours = {(line.week_of, line.automation): value_of(line) for line in lines}
    top = max(hours.values()) or 1.0

    def label(value: float) -> str:
        return f"${value:,.0f}" if unit == "$" else f"{value:.1f} {unit}"

    left, bottom, legend = 48, 28, 18 * len(names) + 8
    plot_w, plot_h = width - left - 8, height - bottom - legend - 8
    group = plot_w / len(weeks)
    bar = max(2.0, group * 0.8 / len(names))
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="{escape(what)} per week">',
        f'<line x1="{left}" y1="{8 + plot_h}" x2="{width - 8}" y2="{8 + plot_h}" stroke="#444"/>',
        f'<text x="4" y="14" font-size="11">{label(top)}</text>',
        f'<text x="4" y="{8 + plot_h}" font-size="11">{label(0)}</text>',
    ]
    for w, week in enumerate(weeks):
        x0 = left + w * group + group * 0.1
        for n, name in enumerate(names):
            value = hours.get((week, name), 0.0)
            h = plot_h * value / top
            parts.append(
                f'<rect class="bar" x="{x0 + n * bar:.1f}" y="{8 + plot_h - h:.1f}" '
                f'width="{bar - 1:.1f}" height="{h:.1f}" fill="{PALETTE[n % len(PALETTE)]}">'
                f"<title>{escape(name)}, week of {week}: {label(value)}</title></rect>"
            )
        parts.append(f'<text x="{x0:.1f}" y="{8 + plot_h + 16}" font-size="11">{week:%d %b}</text>')
    for n, name in enumerate(names):
        y = height - legend + 18 * n + 4
        parts.append(
            f'<rect x="{left}" y="{y}" width="12" height="12" '
            f'fill="{PALETTE[n % len(PALETTE)]}"/>'
            f'<text x="{left + 18}" y="{y + 11}" font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def rates_chart_svg(
    rates: Mapping[str, Sequence[WeekRate]], *, width: int = 720, height: int = 220
) -> str:
    """Each weekly rate as a line from 0 to 100% (an SVG element); an empty week is a gap."""
    weeks = sorted({r.week_of for series in rates.values() for r in series})
    named = [(name, series) for name, series in rates.items() if any(r.of for r in series)]
    if not weeks or not named:
        return '<svg class="chart" role="img" aria-label="Weekly rates: none yet"></svg>'
    left, bottom, legend = 48, 28, 18 * len(named) + 8
    plot_w, plot_h = width - left - 16, height - bottom - legend - 8
    step = plot_w / max(1, len(weeks) - 1)
    x_of = {week: left + i * step for i, week in enumerate(weeks)}

    def y_of(rate: float) -> float:
        return 8 + plot_h * (1 - rate)

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="No-show and confirmation rates per week">',
        f'<line x1="{left}" y1="{8 + plot_h}" x2="{width - 8}" y2="{8 + plot_h}" stroke="#444"/>',
        '<text x="4" y="14" font-size="11">100%</text>',
        f'<text x="4" y="{8 + plot_h}" font-size="11">0%</text>',
    ]
    for week in weeks:
        parts.append(
            f'<text x="{x_of[week] - 12:.1f}" y="{8 + plot_h + 16}" font-size="11">'
            f"{week:%d %b}</text>"
        )
    for n, (name, series) in enumerate(named):
        colour = PALETTE[n % len(PALETTE)]
        points = [(x_of[r.week_of], y_of(r.rate), r) for r in series if r.rate is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, r in points:
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)}, week of {r.week_of}: {r.rate or 0:.0%} "
                f"({r.count} of {r.of})</title></circle>"
            )
        y = height - legend + 18 * n + 4
        parts.append(
            f'<rect x="{left}" y="{y}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{left + 18}" y="{y + 11}" font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def html_report(
    lines: Sequence[WeekLine], *, title: str, weeks: int, trends: Trends | None = None
) -> str:
    """A self-contained HTML report for a board meeting (no script, no outside resource)."""
    sums = totals(lines)
    rows = "".join(
        "<tr>"
        f"<td>{line.week_of}</td><td>{escape(line.automation)}</td><td>{len(line.run_ids)}</td>"
        f"<td>{escape(units_text(line))}</td><td>{line.hours:.1f}</td>"
        f"<td>${line.money_cents / 100:,.2f}</td><td>${line.revenue_cents / 100:,.2f}</td>"
        "</tr>"
        for line in lines
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:Arial,sans-serif;max-width:60em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;"
        "padding:.3em;text-align:left;font-size:.9em}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>The last {weeks} week(s): <strong>{sums.hours:.1f} staff hours</strong> saved, "
        f"worth <strong>${sums.money_cents / 100:,.2f}</strong>, and "
        f"<strong>${sums.revenue_cents / 100:,.2f}</strong> of visits recovered, "
        f"from {sums.runs} automation runs.</p>"
        f"{hours_chart_svg(lines)}{money_chart_svg(lines)}"
        "<table><thead><tr><th>Week of</th><th>Automation</th><th>Runs</th><th>Units</th>"
        "<th>Hours</th><th>Money</th><th>Revenue</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"{_trends_html(trends) if trends is not None else ''}"
        f"<p>{METHOD_NOTE}</p></body></html>"
    )


def _trends_html(trends: Trends) -> str:
    rows = "".join(
        f"<tr><td>{row['week_of']}</td><td>{row['noshow']}</td><td>{row['confirmed']}</td>"
        f"<td>{row['avoided']}</td></tr>"
        for row in trend_rows(trends)
    )
    return (
        "<h2>No-show and confirmation rates</h2>"
        f"<p>Against the {trends.baseline:.0%} no-show baseline, "
        f"<strong>${trends.avoided_cents / 100:,.2f}</strong> of visits kept that would have "
        "been missed (each priced at the week's visits' average value by type).</p>"
        f"{rates_chart_svg(trends.rates)}"
        "<table><thead><tr><th>Week of</th><th>No-show rate</th><th>Confirmation rate</th>"
        f"<th>No-shows avoided</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def trend_rows(trends: Trends) -> list[dict[str, str]]:
    """One row of text per week: the rates as "12% (3 of 25)", the no-shows avoided and worth."""

    def share(rate: WeekRate) -> str:
        return f"{rate.rate:.0%} ({rate.count} of {rate.of})" if rate.rate is not None else ""

    noshow = trends.rates["No-show rate"]
    confirmed = trends.rates["Confirmation rate"]
    return [
        {
            "week_of": n.week_of.isoformat(),
            "noshow": share(n),
            "confirmed": share(c),
            "avoided": f"{a.avoided:.1f} (${a.revenue_cents / 100:,.0f})" if a.visits else "",
        }
        for n, c, a in zip(noshow, confirmed, trends.avoided, strict=True)
    ]


PORTFOLIO_COLUMNS = (
    "id",
    "process",
    "department",
    "owner",
    "state",
    "automation",
    "hours_per_year_estimated",
    "savings_per_year_estimated",
    "payback_months",
    "npv_5y",
    "estimate_to_date",
    "actual_to_date",
    "ratio",
    "flagged",
    "trial_per_week",
)


def portfolio_rows(standings: Sequence[Standing]) -> list[dict[str, object]]:
    """One plain row per proposal (CSV, JSON and the tables use these)."""
    return [
        {
            "id": s.proposal.id,
            "process": s.proposal.process,
            "department": s.proposal.department,
            "owner": s.proposal.owner,
            "state": s.proposal.state,
            "automation": s.proposal.automation or "",
            "hours_per_year_estimated": round(s.estimate.hours_per_year, 1),
            "savings_per_year_estimated": round(s.estimate.savings_per_year, 2),
            "payback_months": (
                round(s.estimate.payback_months, 1) if s.estimate.payback_months else None
            ),
            "npv_5y": round(s.estimate.npv, 2),
            "estimate_to_date": round(s.estimate_to_date, 2),
            "actual_to_date": round(s.actual_total, 2),
            "ratio": round(s.ratio, 2) if s.ratio is not None else None,
            "flagged": s.flagged,
            "trial_per_week": round(s.trial_per_week, 2) if s.trial_per_week is not None else None,
        }
        for s in standings
    ]


def portfolio_cells(row: Mapping[str, object]) -> tuple[str, ...]:
    """One `portfolio_rows` row as a table shows it: #, process, owner, state, estimate a
    year, actual to date, ratio, flag."""
    ratio = row["ratio"]
    return (
        str(row["id"]),
        str(row["process"]),
        str(row["owner"]),
        str(row["state"]),
        f"${row['savings_per_year_estimated']:,.0f}",
        f"${row['actual_to_date']:,.2f}",
        f"{ratio:.0%}" if isinstance(ratio, float) else "",
        "behind estimate" if row["flagged"] else "",
    )


def portfolio_csv(standings: Sequence[Standing]) -> str:
    """The portfolio as CSV."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PORTFOLIO_COLUMNS)
    writer.writeheader()
    for row in portfolio_rows(standings):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def trends_csv(trends: Mapping[str, Sequence[WeekRate]]) -> str:
    """The weekly rates as CSV: one row per week and rate."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("week_of", "rate", "count", "of", "share"))
    for name, rates in trends.items():
        for r in rates:
            share = f"{r.rate:.4f}" if r.rate is not None else ""
            writer.writerow((r.week_of.isoformat(), name, r.count, r.of, share))
    return out.getvalue()
