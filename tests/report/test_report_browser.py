"""report.html in headless Chromium at 1400 and 800 px: no console errors, the recommendation card at
the top, every plot loaded with a non-zero size, no sideways scrolling of the page (wide tables scroll
inside their own box). Screenshots of both widths are saved next to the report (``tmp_path``), and
also into ``$GPTBERT_SCREENSHOT_DIR`` when it is set, to be looked at.

Chromium is driven over the DevTools protocol (``tests._browser``); without it the test is skipped,
loudly, unless ``GPTBERT_REQUIRE_BROWSER`` is set.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from gptbert.report import write_reports
from gptbert.report.plots import all_plots, candidate_plots
from gptbert.results import Comparison
from tests._browser import Chromium, find_chromium
from tests.report.comparisons import crowded, realistic

WIDTHS = (1400, 800)
PAGE_FACTS = """(() => {
  const doc = document.documentElement, body = document.body;
  const card = document.querySelector('section.card');
  const imgs = [...document.querySelectorAll('figure img')];
  const scrolls = [...document.querySelectorAll('.scroll')];
  return {
    scrollWidth: doc.scrollWidth, innerWidth: window.innerWidth,
    first: body.children[1] ? body.children[1].className : null,
    cardTop: card ? card.getBoundingClientRect().top : null,
    cardTitle: card ? card.querySelector('h2').textContent : null,
    cardReasons: card ? card.querySelectorAll('ol li').length : 0,
    images: imgs.map(i => ({complete: i.complete, natural: i.naturalWidth, w: i.getBoundingClientRect().width,
                            h: i.getBoundingClientRect().height})),
    widestBox: Math.max(0, ...scrolls.map(s => s.getBoundingClientRect().right)),
    pre: document.querySelectorAll('pre').length,
  };
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            out.append(str(params.get("exceptionDetails", {}).get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            out.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            out.append(str(params["entry"].get("text")))
    return out


def _open(browser: Chromium, url: str, width: int) -> str:
    session = browser.open("about:blank")
    for method in ("Runtime.enable", "Log.enable", "Page.enable"):
        browser.call(method, session=session)
    browser.call("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=session)
    browser.call("Page.navigate", {"url": url}, session=session)
    deadline = time.monotonic() + 30
    while browser.evaluate(session, "document.readyState === 'complete' && "
                                    "[...document.images].every(i => i.complete)") is not True:
        assert time.monotonic() < deadline, "report.html did not finish loading in 30 s"
        time.sleep(0.1)
    # the per-candidate sections are closed <details>: open them so their figures lay out too
    browser.evaluate(session, "document.querySelectorAll('details').forEach(d => d.open = true)")
    return session


def _n_plots(comparison: Comparison) -> int:
    return len(all_plots(comparison)) + sum(len(candidate_plots(comparison, c.name)) for c in comparison.candidates)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
@pytest.mark.parametrize("name, build", [("realistic", realistic), ("crowded", lambda: crowded(15))])
def test_report_in_a_browser(chromium: str, tmp_path: Path, name: str, build: Any) -> None:
    comparison = build()
    html = write_reports(comparison, tmp_path / name)["html"]
    expected = _n_plots(comparison)
    assert expected >= (7 if name == "realistic" else 5)  # learning curve and reliability diagrams included
    browser = Chromium(chromium, tmp_path / "profile")
    try:
        for width in WIDTHS:
            session = _open(browser, html.resolve().as_uri(), width)
            facts = browser.evaluate(session, PAGE_FACTS)
            shot = browser.screenshot(session, tmp_path / f"{name}-{width}.png")
            if os.environ.get("GPTBERT_SCREENSHOT_DIR"):
                Path(os.environ["GPTBERT_SCREENSHOT_DIR"]).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(os.environ["GPTBERT_SCREENSHOT_DIR"]) / shot.name)
            assert shot.stat().st_size > 10_000
            assert _errors(browser.events) == [], width
            # the card right under the title, with the choice and three reasons
            assert "card" in facts["first"] and facts["cardTop"] < 400, facts
            assert facts["cardTitle"].startswith("Recommendation: ") and facts["cardReasons"] == 3
            assert facts["pre"] == 0
            # every plot loaded and shown, none wider than the page
            assert len(facts["images"]) == expected, facts["images"]
            for img in facts["images"]:
                assert img["complete"] and img["natural"] > 0 and img["w"] > 100 and img["h"] > 100, img
                assert img["w"] <= width
            # the page never scrolls sideways; wide tables scroll inside their box
            assert facts["scrollWidth"] <= facts["innerWidth"], facts
            assert facts["widestBox"] <= width
    finally:
        browser.close()
