"""The impact report as a PDF for a board meeting (pure: the ledger's lines in, bytes out).

The same figures as the terminal, HTML and web report (`impact.report`): totals, the weekly
charts (the same server-side SVG, drawn by fpdf2), the lines, the rates and the portfolio. The
PDF's built-in fonts hold Latin-1 only, so other characters (an automation's name, a practice's)
are printed as their closest Latin-1 form or "?", never dropped silently.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence

from fpdf import FPDF

from clinicflow.impact.ledger import WeekLine, totals
from clinicflow.impact.proposals import Standing
from clinicflow.impact.report import (
    METHOD_NOTE,
    hours_chart_svg,
    line_cells,
    money_chart_svg,
    portfolio_cells,
    portfolio_rows,
    rates_chart_svg,
    trend_rows,
)
from clinicflow.impact.trends import Trends

_PUNCTUATION = str.maketrans(
    {"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
)  # dashes and curly quotes
_WIDTH_MM = 180  # A4 less the margins


def latin1(text: str) -> str:
    """`text` in the characters the PDF's built-in fonts have."""
    text = unicodedata.normalize("NFC", text.translate(_PUNCTUATION))
    return text.encode("latin-1", errors="replace").decode("latin-1")


def pdf_report(
    lines: Sequence[WeekLine],
    *,
    title: str,
    weeks: int,
    trends: Trends | None = None,
    standings: Sequence[Standing] = (),
) -> bytes:
    """The board-meeting report as PDF bytes."""
    sums = totals(lines)
    pdf = FPDF(format="A4")
    pdf.set_title(latin1(title))
    pdf.set_creator("clinicflow")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.multi_cell(0, 8, latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    pdf.multi_cell(
        0,
        5,
        f"The last {weeks} week(s): {sums.hours:.1f} staff hours saved, worth "
        f"${sums.money_cents / 100:,.2f}, and ${sums.revenue_cents / 100:,.2f} of visits "
        f"recovered, from {sums.runs} automation runs.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    _chart(pdf, "Staff hours saved per week", hours_chart_svg(lines))
    _chart(pdf, "Money saved per week", money_chart_svg(lines))
    _heading(pdf, "By automation and week")
    _table(
        pdf,
        ("Week of", "Automation", "Runs", "Units", "Hours", "Money", "Revenue"),
        [line_cells(line) for line in lines],
        widths=(20, 30, 10, 65, 13, 21, 21),
    )
    if trends is not None:
        _heading(pdf, "No-show and confirmation rates")
        pdf.multi_cell(
            0,
            5,
            f"Against the {trends.baseline:.0%} no-show baseline, "
            f"${trends.avoided_cents / 100:,.2f} of visits kept that would have been missed.",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        _chart(pdf, None, rates_chart_svg(trends.rates))
        _table(
            pdf,
            ("Week of", "No-show rate", "Confirmation rate", "No-shows avoided"),
            [(r["week_of"], r["noshow"], r["confirmed"], r["avoided"]) for r in trend_rows(trends)],
            widths=(30, 50, 50, 50),
        )
    if standings:
        _heading(pdf, "Portfolio")
        _table(
            pdf,
            ("#", "Process", "Owner", "State", "Estimate/yr", "Actual", "Ratio", "Flag"),
            [portfolio_cells(row) for row in portfolio_rows(standings)],
            widths=(8, 45, 25, 18, 24, 22, 14, 24),
        )
    pdf.set_font("helvetica", "I", 8)
    pdf.multi_cell(0, 4, METHOD_NOTE, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 12)
    pdf.multi_cell(0, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)


def _chart(pdf: FPDF, heading: str | None, svg: str) -> None:
    if heading is not None:
        _heading(pdf, heading)
    if "<rect class=" not in svg and "<polyline" not in svg:
        pdf.multi_cell(0, 5, "Nothing to chart yet.", new_x="LMARGIN", new_y="NEXT")
        return
    pdf.image(io.BytesIO(svg.encode()), w=_WIDTH_MM)


def _table(
    pdf: FPDF, header: Sequence[str], rows: Sequence[Sequence[str]], *, widths: Sequence[int]
) -> None:
    pdf.set_font("helvetica", size=8)
    with pdf.table(col_widths=tuple(widths), text_align="LEFT", line_height=4) as table:
        head = table.row()
        for cell in header:
            head.cell(latin1(cell))
        for values in rows:
            row = table.row()
            for cell in values:
                row.cell(latin1(cell))
    pdf.set_font("helvetica", size=10)
