"""Self-contained HTML report: inline CSS, plots embedded as base64 PNG, no scripts, fonts or links
to anything outside the file. Readable from phone width up: wide tables scroll inside their own
box (the page itself never scrolls sideways), figures shrink to the page width.
"""

from __future__ import annotations

import base64
import html
import os
import struct
from pathlib import Path
from typing import Any

from gptbert.io.files import atomic_write_text
from gptbert.recommend import Constraints
from gptbert.report.card import Card
from gptbert.report.document import Report, build_report
from gptbert.report.tables import Table
from gptbert.results import Comparison

__all__ = ["render_html", "render_table", "write_html"]

_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d0d7de; --soft: #f6f8fa; --accent: #1a7f37; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1320px;
       padding: 1.2rem 1.2rem 3rem; color: var(--ink); line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.55rem; margin: 0.2rem 0 0.3rem; }
h2 { font-size: 1.2rem; margin: 2.2rem 0 0.6rem; padding-bottom: 0.2rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.02rem; margin: 1.2rem 0 0.4rem; }
p { margin: 0.4rem 0; }
code { background: var(--soft); padding: 0 0.25rem; border-radius: 3px; font-size: 0.9em; overflow-wrap: anywhere; }
.meta { color: var(--muted); font-size: 0.9rem; overflow-wrap: anywhere; }
.note { color: var(--muted); font-size: 0.86rem; }
.card { border: 1px solid #9fd3ad; border-left: 6px solid var(--accent); border-radius: 8px; background: #f3fbf5;
        padding: 0.9rem 1.2rem 0.8rem; margin: 1rem 0 1.4rem; }
.card.none { border-color: #e5b4b4; border-left-color: #b42318; background: #fdf4f4; }
.card h2 { border: 0; margin: 0 0 0.2rem; font-size: 1.35rem; }
.card .summary { color: var(--muted); margin-bottom: 0.6rem; }
.card ol, .card ul { margin: 0.2rem 0 0.6rem; padding-left: 1.4rem; }
.card li { margin: 0.15rem 0; }
.card .label { font-weight: 600; }
.card code { white-space: nowrap; }
.scroll { overflow-x: auto; width: fit-content; max-width: 100%; margin: 0.4rem 0 0.8rem;
          border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: separate; border-spacing: 0; font-size: 0.86rem; }
th, td { border-bottom: 1px solid var(--line); padding: 0.3rem 0.6rem; text-align: left; vertical-align: top;
         white-space: nowrap; }
tbody tr:last-child td { border-bottom: 0; }
thead th { background: var(--soft); white-space: normal; min-width: 5.5rem; vertical-align: bottom; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td:first-child { font-weight: 500; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 16rem; max-width: 60rem; overflow-wrap: anywhere; }
tr.group th { background: #eef2f6; text-align: left; font-size: 0.82rem; text-transform: uppercase;
              letter-spacing: 0.03em; color: var(--muted); }
.scroll.kv { width: auto; } table.kv { width: 100%; }
table.kv td:first-child { width: 15rem; min-width: 9rem; white-space: normal; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 500px), 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem; background: #fff; }
figure.wide { grid-column: 1 / -1; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 0.85rem; margin-top: 0.3rem; }
details { border: 1px solid var(--line); border-radius: 6px; margin: 0.5rem 0; padding: 0 0.8rem; }
details[open] { padding-bottom: 0.6rem; }
summary { cursor: pointer; padding: 0.5rem 0; font-weight: 600; overflow-wrap: anywhere; }
summary .note { font-weight: normal; }
.failed { color: #b42318; }
ul.plain { padding-left: 1.2rem; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _inline_code(text: str) -> str:
    """Escaped text with `backticked` spans as <code>."""
    parts = _e(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_table(table: Table, level: int = 2, heading: bool = True) -> str:
    """A titled table inside a box that scrolls sideways when the table is wider than the page."""
    anchor = f' id="{_e(table.anchor)}"' if table.anchor else ""
    out = [f"<h{level}{anchor}>{_e(table.title)}</h{level}>"] if heading else []
    if not table.rows:
        return "".join(out) + '<p class="note">(none)</p>'
    kv = not any(table.headers)
    out.append('<div class="scroll kv"><table class="kv">' if kv else '<div class="scroll"><table>')
    if not kv:
        out.append("<thead><tr>" + "".join(
            f'<th class="{table.widths.get(i, "")}">{_e(h)}</th>' for i, h in enumerate(table.headers)) + "</tr></thead>")
    out.append("<tbody>")
    for row in table.rows:
        if len(row) == 1 and len(table.headers) > 1:
            out.append(f'<tr class="group"><th colspan="{len(table.headers)}">{_e(row[0])}</th></tr>')
            continue
        out.append("<tr>" + "".join(f'<td class="{table.widths.get(i, "")}">{_e(c)}</td>'
                                    for i, c in enumerate(row)).replace(' class=""', "") + "</tr>")
    out.append("</tbody></table></div>")
    if table.note:
        out.append(f'<p class="note">{_e(table.note)}</p>')
    return "\n".join(out).replace(' class=""', "")


def render_card(card: Card) -> str:
    """The recommendation card."""
    cls = "card" if card.choice else "card none"
    out = [f'<section class="{cls}" id="recommendation">', f"<h2>{_e(card.title)}</h2>"]
    if card.summary:
        out.append(f'<p class="summary">{_e(card.summary)}</p>')
    if card.reasons:
        out.append('<p class="label">Why</p><ol>' + "".join(f"<li>{_e(r)}</li>" for r in card.reasons) + "</ol>")
    if card.problem:
        out.append('<ul>' + "".join(f"<li>{_e(r)}</li>" for r in card.problem) + "</ul>")
    out.append(f'<p><span class="label">Constraints:</span> {_inline_code(card.constraints)}.</p>')
    if card.runner_up:
        out.append(f'<p><span class="label">Runner-up:</span> {_e(card.runner_up)}</p>')
    if card.excluded:
        out.append(f'<p><span class="label">Excluded:</span> {_e("; ".join(card.excluded))}.</p>')
    for note in card.notes:
        out.append(f'<p class="note">{_e(note)}</p>')
    out.append('<p class="note"><a href="#reasoning">The full reasoning</a> · <a href="#summary">every candidate</a>'
               "</p></section>")
    return "\n".join(out)


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def render_plot(plot: Any) -> str:
    from gptbert.report.plots import DPI, SHOWN_DPI

    w, h = _png_size(plot.png)
    data = base64.b64encode(plot.png).decode("ascii")
    size = f'width="{round(w * SHOWN_DPI / DPI)}" height="{round(h * SHOWN_DPI / DPI)}"'
    caption = _e(plot.title) + (f" · {_e(plot.caption)}" if plot.caption else "")
    return (f'<figure class="{"wide" if plot.wide else "half"}"><img alt="{_e(plot.title)}" {size} '
            f'src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>')


def _plots_html(report: Report) -> str:
    if report.plots_note:
        return f'<p class="note">{_inline_code(report.plots_note)}</p>'
    return '<div class="figs">' + "\n".join(render_plot(p) for p in report.plots) + "</div>"


def _reasoning_html(card: Card, report: Report) -> str:
    out = ['<h2 id="reasoning">Why this recommendation</h2>']
    if card.all_reasons:
        out.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in card.all_reasons) + "</ul>")
    if card.runner_up:
        out.append(f"<p><b>Runner-up:</b> {_e(card.runner_up)}</p>")
    if card.excluded_full:
        out.append("<p><b>Excluded:</b></p><ul>" + "".join(
            f"<li><b>{_e(n)}</b>: {_e(why)}</li>" for n, why in card.excluded_full) + "</ul>")
    if len(card.ranking) > 1:
        out.append(f"<p><b>Ranking</b> (statistical ties broken by cost): {_e(' > '.join(card.ranking))}</p>")
    out.append("<h3>Pareto front (dev quality vs p95 latency at batch 1)</h3>")
    if report.front:
        out.append('<ul class="plain">' + "".join(f"<li><b>{_e(n)}</b>: {_e(t)}</li>" for n, t in report.front)
                   + "</ul>")
        out.append('<p class="note">No other candidate is both at least as accurate and at least as fast.</p>')
    else:
        out.append('<p class="note">No candidate has both a quality and a latency measurement.</p>')
    return "\n".join(out)


def _candidates_html(report: Report) -> str:
    out = ["<h2>Candidates in detail</h2>"]
    for section in report.sections:
        figs = "".join(render_plot(p) for p in section.plots)
        out.append(f'<details id="{_e(section.table.anchor)}"><summary>{_e(section.title)} '
                   f'<span class="note">{_e(section.headline)}</span></summary>'
                   + render_table(section.table, heading=False) + (f'<div class="figs">{figs}</div>' if figs else "")
                   + "</details>")
    return "\n".join(out)


def render_html(comparison: Comparison, constraints: Constraints | None = None) -> str:
    report = build_report(comparison, constraints)
    body = [f"<header><h1>{_e(report.title)}</h1>",
            "".join(f'<p class="meta">{_e(line)}</p>' for line in report.meta) + "</header>",
            render_card(report.card),
            render_table(report.summary),
            render_table(report.legend),
            "<h2>Plots</h2>", _plots_html(report),
            _reasoning_html(report.card, report)]
    body += [render_table(t) for t in report.details]
    body.append(_candidates_html(report))
    body.append("<h2>Failed or skipped candidates</h2>")
    if report.failed:
        body.append("<ul>" + "".join(f'<li class="failed"><b>{_e(n)}</b> ({_e(s)}): {_e(err)}</li>'
                                     for n, s, err in report.failed) + "</ul>")
    else:
        body.append("<p>None: every candidate ran.</p>")
    body += [render_table(t) for t in report.context]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(report.title)} ({_e(comparison.id)})</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_html(comparison: Comparison, path: str | os.PathLike[str], constraints: Constraints | None = None) -> Path:
    """Write the self-contained HTML report to ``path`` (atomically)."""
    return atomic_write_text(path, render_html(comparison, constraints))
