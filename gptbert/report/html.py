"""Self-contained HTML report: inline CSS, plots embedded as base64 PNG, no external assets."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from gptbert.io.files import atomic_write_text
from gptbert.report import (
    Table,
    candidate_latency,
    fmt_value,
    candidate_table,
    failed_candidates,
    hardware_table,
    latency_table,
    pareto_candidates,
    profile_table,
    recommendation_for,
    run_table,
    size_table,
    summary_table,
    training_table,
)
from gptbert.results import Comparison

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin-top: 1.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.88rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.55rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; white-space: pre-wrap; }
.note { color: #666; font-style: italic; }
.failed { color: #a00; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def render_table(table: Table, level: int = 2) -> str:
    out = [f"<h{level}>{_e(table.title)}</h{level}>"]
    if not table.rows:
        return out[0] + '<p class="note">(none)</p>'
    out.append("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in table.headers) + "</tr></thead><tbody>")
    for row in table.rows:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _figures(comparison: Comparison) -> str:
    from gptbert.report import plots

    if not plots.available():
        return ('<p class="note">Plots need matplotlib (<code>pip install \'gptbert[plots]\'</code>); '
                "this report shows the tables only.</p>")
    try:
        figures = plots.all_plots(comparison)
    except Exception as e:  # a broken plotting stack must not lose the report
        return f'<p class="note">Plots could not be drawn ({_e(type(e).__name__)}: {_e(e)}); tables only.</p>'
    if not figures:
        return '<p class="note">Nothing to plot: no latency, size or curve data.</p>'
    parts = []
    for title, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{_e(title)}</figcaption></figure>")
    return "\n".join(parts)


def render_html(comparison: Comparison, constraints: Any = None) -> str:
    rec = recommendation_for(comparison, constraints)
    body = [
        f"<h1>gptbert comparison: {_e(comparison.task)}</h1>",
        f"<p>Run <code>{_e(comparison.id)}</code>, {_e(comparison.created_at)}, "
        f"{len(comparison.candidates)} candidates, gptbert {_e(comparison.version)}.</p>",
        "<h2>Recommendation</h2>",
        f"<pre>{_e(rec.text)}</pre>",
        render_table(summary_table(comparison)),
        "<h2>Pareto front (dev quality vs p95 latency at batch 1)</h2>",
    ]
    front = pareto_candidates(comparison)
    if front:
        items = []
        for c in front:
            p95, prec = candidate_latency(c)
            q = c.quality
            assert q is not None and q.value is not None
            lat = f"{p95:.2f} ms p95 ({prec})" if p95 is not None else "no latency"
            items.append(f"<li><b>{_e(c.name)}</b>: {_e(q.metric)} {fmt_value(q.value, q.metric)}, {_e(lat)}</li>")
        body.append("<ul>" + "".join(items) + "</ul>")
    else:
        body.append('<p class="note">No candidate has both a quality and a latency measurement.</p>')
    body += ["<h2>Plots</h2>", _figures(comparison)]
    body += [render_table(latency_table(comparison)), render_table(size_table(comparison)),
             render_table(training_table(comparison)), "<h2>Candidates</h2>"]
    body += [render_table(candidate_table(c), level=3) for c in comparison.candidates]
    body.append("<h2>Failed or skipped candidates</h2>")
    failed = failed_candidates(comparison)
    if failed:
        body.append("<ul>" + "".join(
            f'<li class="failed"><b>{_e(c.name)}</b> ({_e(c.status)}): {_e(c.error or "no error message recorded")}</li>'
            for c in failed) + "</ul>")
    else:
        body.append("<p>None: every candidate ran.</p>")
    body += [render_table(run_table(comparison)), render_table(hardware_table(comparison.hardware)),
             render_table(profile_table(comparison.dataset_profile))]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>gptbert comparison {_e(comparison.id)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_html(comparison: Comparison, path: str | os.PathLike[str], constraints: Any = None) -> Path:
    """Write the self-contained HTML report to ``path`` (atomically)."""
    return atomic_write_text(path, render_html(comparison, constraints))
