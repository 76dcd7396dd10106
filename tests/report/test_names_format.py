"""Display names and their legend; numbers written for people."""

from __future__ import annotations

import pytest

from gptbert.report.format import fmt_duration, fmt_mb, fmt_ms, fmt_number, fmt_params, fmt_rate
from gptbert.report.names import MAX_NAME, display_names, legend_table, relabel
from gptbert.results import CandidateResult
from tests.report.comparisons import crowded, realistic

LONG_ELMO = "elmo-small(use_char_cnn=False,n_embd=128,intermediate_size=128)"


def _cands(*names: str) -> list[CandidateResult]:
    return [CandidateResult(name=n, family="bert", source=n.split("(")[0]) for n in names]


def test_variants_get_letters_per_base_and_short_names_stay():
    names = display_names(_cands("bert-mini", LONG_ELMO, "bert-mini(n_layer=2)", "elmo-small(n_layer=1)",
                                 "bert-mini(n_layer=3)"))
    assert names == {"bert-mini": "bert-mini", LONG_ELMO: "elmo-small (a)", "bert-mini(n_layer=2)": "bert-mini (a)",
                     "elmo-small(n_layer=1)": "elmo-small (b)", "bert-mini(n_layer=3)": "bert-mini (b)"}


def test_long_names_are_cut_in_the_middle_and_stay_unique():
    a, b = "all-MiniLM-L6-v2-finetuned-sst2-seed1", "all-MiniLM-L6-v2-finetuned-sst2-seed2"
    names = display_names(_cands(a, b))
    assert all(len(v) <= MAX_NAME for v in names.values())
    assert names[a].endswith("seed1") and names[b].endswith("seed2") and "…" in names[a]
    # a cut name equal to another candidate's real name gets a number
    names = display_names(_cands("x" * 40, "x" * 41))
    assert len(set(names.values())) == 2


def test_display_names_unique_for_crowded_comparison():
    comp = crowded(15)
    names = display_names(comp)
    assert len(set(names.values())) == 15 and all(len(n) <= MAX_NAME for n in names.values())


def test_relabel_and_legend():
    comp = realistic()
    names = display_names(comp)
    text = relabel(f"{LONG_ELMO} beats bert-tiny(n_layer=1,n_head=2,dropout=0.05) and bert-mini", names)
    assert text == "elmo-small (a) beats bert-tiny (a) and bert-mini"
    legend = legend_table(comp, names)
    row = next(r for r in legend.rows if r[0] == "elmo-small (a)")
    assert row[3] == "use_char_cnn=False, n_embd=128, intermediate_size=128" and row[4] == LONG_ELMO
    tiny = next(r for r in legend.rows if r[0] == "bert-tiny (a)")
    assert tiny[3] == "n_layer=1, n_head=2, dropout=0.05"


@pytest.mark.parametrize("value, text", [(24_110.5, "23.5 GB"), (310.0, "310 MB"), (42.5, "42.5 MB"),
                                         (0.42, "0.42 MB"), (None, "–"), (float("nan"), "–")])
def test_fmt_mb(value, text):
    assert fmt_mb(value) == text


def test_other_formats_never_scientific():
    assert [fmt_ms(x) for x in (0.512, 5.5, 12.34, 123.4)] == ["0.51", "5.50", "12.3", "123"]
    assert [fmt_duration(x) for x in (4.21, 300.0, 842.7, 9000.0)] == ["4.2 s", "300 s", "14.0 min", "2.5 h"]
    assert [fmt_number(x) for x in (24_110.5, 6920, 8.0, 0.0123, 2e-5, True)] == \
        ["24,110", "6,920", "8", "0.0123", "2.0e-05", "True"]
    assert fmt_rate(3333.3) == "3,333" and fmt_rate(140.0, "tokens/s") == "140 tokens/s"
    assert [fmt_params(n) for n in (55_000, 4_400_000, 335_000_000)] == ["55k", "4.40M", "335M"]
