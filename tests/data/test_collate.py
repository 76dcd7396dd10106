"""The batch pieces every task collator shares: special-token templates probed from the tokenizer."""

from __future__ import annotations

from pathlib import Path

from gptbert.data.collate import special_template
from gptbert.tokenizer import Tokenizer


def test_special_template(tok: Tokenizer, bpe: Tokenizer) -> None:
    t = special_template(tok)
    assert (t.prefix, t.suffix, t.middle, t.pair_suffix) == ((tok.cls_id,), (tok.sep_id,), (tok.sep_id,), (tok.sep_id,))
    assert (t.type_a, t.type_b) == (0, 1)
    b = special_template(bpe)
    assert b.prefix == b.suffix == b.middle == b.pair_suffix == ()


def test_special_template_cache_follows_the_object_not_its_id(minilm_dir: Path, bpe: Tokenizer) -> None:
    """A collected tokenizer's id() is reused by new objects: the cache must drop it, so that
    a new tokenizer never gets a dead one's special tokens (seen as a flaky QA window test)."""
    import gc

    from gptbert.data import collate

    fresh = Tokenizer.load(minilm_dir)
    assert special_template(fresh).prefix == (fresh.cls_id,)
    assert fresh in collate._TEMPLATES
    n = len(collate._TEMPLATES)
    del fresh
    gc.collect()
    assert len(collate._TEMPLATES) == n - 1
    assert special_template(bpe).prefix == ()
