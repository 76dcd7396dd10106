"""Per-candidate sections (``extra`` grouped and formatted) and the recommendation card."""

from __future__ import annotations

import re

from gptbert.recommend import Constraints
from gptbert.report import build_report
from gptbert.report.card import build_card, strongest_reasons
from gptbert.report.document import recommendation_for
from gptbert.report.extras import GROUPS, extra_rows
from gptbert.report.markdown import render_markdown
from gptbert.report.names import display_names
from gptbert.report.tables import candidate_table, summary_table
from tests.report.comparisons import crowded, realistic
from tests.test_results import make_comparison

MINILM = "all-MiniLM-L6-v2-finetuned-sst2-seed1"


def test_candidate_section_groups_extra_and_formats_numbers():
    comp = realistic()
    table = candidate_table(comp.candidate(MINILM), display_names(comp))
    groups = [r[0] for r in table.rows if len(r) == 1]
    assert groups == [g for g in GROUPS if g in groups] and groups[:4] == ["Quality", "Model", "Training", "Inference"]
    cells = {r[0]: r[1] for r in table.rows if len(r) == 2}
    text = "\n".join(" ".join(r) for r in table.rows)
    assert "extra." not in text and not re.search(r"\d e[+-]\d|\de[+-]\d\d", text), text
    assert cells["peak memory (RSS) training"] == "23.5 GB"  # not 2.411e+04
    assert cells["recipe"].startswith("peak lr 0.0001, batch 32, max length 128 tokens")
    assert cells["macro-F1 dev [95% CI]"] == "0.891 [0.863, 0.918]"
    assert cells["int8"].startswith("p50 2.80 ms, p95 3.60 ms") and "dev accuracy 0.894" in cells["int8"]
    assert "dynamic int8 Linear layers" in cells["int8"]
    assert cells["CPU time"] == "fine-tuning 241 s"
    # what the report does not know is shown readably in "Other"; plotted data is not dumped
    assert "Other" in groups and cells["some new measurement"] == "value 24,110, unit note a key the report does not know"
    assert "learning curve" not in cells and "reliability" not in cells and "learning_curve" not in text


def test_failed_candidate_section_is_short():
    comp = realistic()
    rows = candidate_table(comp.candidate("gpt2-medium")).rows
    assert rows[1] == ["status", "failed: fine-tune: RuntimeError: out of memory while allocating 1.2 GB"]
    assert all("–" not in r[-1] for r in rows if len(r) == 2)  # no rows of dashes


def test_extra_rows_of_an_empty_extra():
    assert all(v == [] for v in extra_rows(make_comparison().candidates[0]).values())


def test_summary_has_dev_and_test_with_intervals():
    comp = realistic()
    table = summary_table(comp, display_names(comp))
    assert table.headers[2:4] == ["accuracy dev [95% CI]", "accuracy test [95% CI]"]
    row = next(r for r in table.rows if r[0].startswith("all-MiniLM"))
    assert row[2] == "0.903 [0.882, 0.922]" and row[3] == "0.892 [0.871, 0.913]"
    assert row[4] == "int8" and row[5] == "3.60" and row[7] == "22.8 MB" and row[8] == "560 MB"
    assert row[0].endswith("★")
    assert next(r for r in table.rows if r[0] == "gpt2-medium")[2] == "failed"


def test_card_choice_three_reasons_constraints_runner_up():
    comp = realistic()
    rec = recommendation_for(comp)
    card = build_card(comp, rec, display_names(comp))
    assert card.title == "Recommendation: all-MiniLM-L…sst2-seed1"
    assert "deploy at int8 on cpu" in card.summary and "0.892 [0.871, 0.913] on test" in card.summary
    assert len(card.reasons) == 3 and card.reasons[0].startswith("best quality: accuracy 0.903")
    assert card.constraints.startswith("none set")
    assert card.runner_up is not None and card.runner_up.startswith("bert-mini is 5.7 points worse")
    assert card.excluded == ["gpt2-medium (failed)"]
    assert len(card.all_reasons) == len(rec.reasons) > 3


def test_strongest_reasons_follow_the_measured_advantage():
    comp = realistic()
    rec = recommendation_for(comp)
    # the choice needs the most memory of all the candidates (560 MB), but is faster and smaller than
    # most: its memory is not among its strongest reasons, its latency and size are
    top = strongest_reasons(rec, comp)
    assert rec.reasons[2].startswith("inference peak RSS")
    assert top[0] == rec.reasons[0] and top[1].startswith("p95 latency") and top[2].startswith("size ")


def test_card_with_limits_says_how_they_are_met():
    comp = realistic()
    cons = Constraints(max_latency_ms=5.0, max_memory_mb=600)
    card = build_card(comp, recommendation_for(comp, cons), display_names(comp), cons)
    assert "max_latency_ms=5.0" in card.constraints and "meets max_latency_ms 5 (uses 72%)" in card.constraints
    assert not any(r.startswith("meets ") for r in card.reasons)
    assert any(x.startswith("embed-lr (p95 latency 5.20 ms") for x in card.excluded)


def test_card_without_a_choice():
    comp = make_comparison()
    comp.candidates = [c for c in comp.candidates if not c.ok]
    card = build_report(comp, with_plots=False).card
    assert card.title == "No recommendation" and card.choice is None
    assert card.summary.startswith("No candidate meets the constraints")
    assert card.problem[0].startswith("elmo-small: failed")


def test_many_ties_are_counted_not_listed_in_the_card():
    comp = crowded(9)  # nine candidates within 0.004 of each other: all tied
    card = build_card(comp, recommendation_for(comp), display_names(comp))
    assert "statistically tied with" in card.all_reasons[0] and card.all_reasons[0].count("95% CI") == 9
    assert "and 6 other candidates (the difference is not significant at 95%)" in card.reasons[0]
    assert card.reasons[0].count("95% CI") == 3


def test_markdown_card_comes_first():
    md = render_markdown(realistic())
    head = md.split("## Summary")[0]
    assert "## Recommendation: all-MiniLM-L…sst2-seed1" in head and "Why:" in head and "**Runner-up:**" in head
    assert "```" not in md  # no pre-formatted blocks
    assert md.index("## Recommendation") < md.index("## Summary") < md.index("## Candidates in detail")
