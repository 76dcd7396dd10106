"""Fine-tuning collators on real task files: classification, tagging, extractive QA, conditional LM."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gptbert.data.collate import (
    ClassificationCollator,
    ConditionalLMCollator,
    QACollator,
    TokenClassificationCollator,
    align_word_predictions,
    locate_answer,
    normalize_answer,
    postprocess_qa,
    prepare_qa_features,
    qa_nbest,
    special_template,
    split_batch,
    squad_examples,
)
from gptbert.data.objectives import IGNORE_INDEX
from gptbert.data.readers import DataWarning, read_squad
from gptbert.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok(minilm_dir: Path) -> Tokenizer:
    return Tokenizer.load(minilm_dir)


@pytest.fixture(scope="module")
def bpe(shared_data: Path) -> Tokenizer:
    lines = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()[:5000]
    return Tokenizer.from_texts(lines, "bpe", 400, show_progress=False)


@pytest.fixture(scope="module")
def sst2(shared_data: Path) -> list[tuple[str, int]]:
    rows = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:201]
    out = []
    for r in rows:
        text, label = r.rsplit("\t", 1)
        out.append((text.strip(), int(label)))
    return out


@pytest.fixture(scope="module")
def squad(shared_data: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_squad(shared_data / "squad-mini" / "dev-v1.1-subset.json")


@pytest.fixture(scope="module")
def qa_features(squad, tok: Tokenizer):
    return prepare_qa_features(squad.examples, tok, max_len=384, doc_stride=128, max_query_len=64)


# --------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------


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


def test_classification_single_and_pairs(tok: Tokenizer, sst2: list[tuple[str, int]]) -> None:
    coll = ClassificationCollator(tok, 24)
    batch = coll(sst2[:16])
    assert set(batch) == {"idx", "attention_mask", "token_type_ids", "targets"}
    assert batch["targets"].tolist() == [l for _, l in sst2[:16]] and batch["targets"].dtype == torch.long
    assert batch["idx"].shape[1] <= 24
    for i, (text, _) in enumerate(sst2[:16]):
        ids = tok.encode(text, max_length=24).ids
        assert batch["idx"][i, : len(ids)].tolist() == ids
        assert batch["attention_mask"][i].sum().item() == len(ids)
        assert (batch["idx"][i, len(ids):] == tok.pad_id).all()

    pairs = [{"text": a, "text_pair": b, "label": la} for (a, la), (b, _) in zip(sst2[:8], sst2[8:16])]
    pb = coll(pairs)
    for i, ex in enumerate(pairs):
        enc = tok.encode(ex["text"], ex["text_pair"], max_length=24)
        n = len(enc.ids)
        assert pb["idx"][i, :n].tolist() == enc.ids
        assert pb["token_type_ids"][i, :n].tolist() == enc.type_ids
        assert 1 in enc.type_ids
    unlabeled = coll([t for t, _ in sst2[:4]])
    assert "targets" not in unlabeled
    reg = coll([("a b", 0.5), ("c", 3.25)])
    assert reg["targets"].dtype == torch.float


def test_classification_left_padding_for_gpt(bpe: Tokenizer, sst2: list[tuple[str, int]]) -> None:
    coll = ClassificationCollator(bpe, 32, padding_side="left")
    batch = coll(sst2[:8])
    assert "token_type_ids" not in batch
    assert (batch["attention_mask"][:, -1] == 1).all()
    for i, (text, _) in enumerate(sst2[:8]):
        ids = bpe.encode(text, max_length=32).ids
        assert batch["idx"][i, -len(ids):].tolist() == ids


def test_classification_char_ids_for_elmo(tok: Tokenizer) -> None:
    batch = ClassificationCollator(tok, 16, return_char_ids=True, max_word_chars=12)([("Hello there", "Pair!", 1)])
    chars = batch["char_ids"]
    assert chars.shape == (1, batch["idx"].shape[1], 12)
    # [CLS] hello there [SEP] pair ! [SEP]: token 4 is "Pair" from the second text.
    word = bytes(c - 6 for c in chars[0, 4, 1:5].tolist())
    assert word == b"Pair"


# --------------------------------------------------------------------------------------
# Token classification
# --------------------------------------------------------------------------------------


def test_token_classification_first_subword(tok: Tokenizer, sst2: list[tuple[str, int]]) -> None:
    examples = []
    for text, _ in sst2[:20]:
        words = text.split()
        examples.append((words, [len(w) % 3 for w in words]))
    examples.append((["Unaffable", "Schwarzenegger", "x"], [1, 2, 0]))
    coll = TokenClassificationCollator(tok, 64)
    batch = coll(examples)
    assert set(batch) == {"idx", "attention_mask", "token_type_ids", "targets", "word_ids"}
    inputs, meta = split_batch(batch)
    assert "word_ids" not in inputs and set(meta) == {"word_ids"}
    tg, wid = batch["targets"], batch["word_ids"]
    for i, (words, tags) in enumerate(examples):
        row_w = wid[i].tolist()
        labelled = [(p, w) for p, w in enumerate(row_w) if tg[i, p] != IGNORE_INDEX]
        # Exactly one labelled position per word: its first piece.
        assert [w for _, w in labelled] == list(range(len(words)))
        for p, w in labelled:
            assert row_w.index(w) == p and tg[i, p].item() == tags[w]
        assert batch["idx"][i, 0] == tok.cls_id and wid[i, 0] == -1
        # The pieces of each word are the word's own pieces.
        for w, word in enumerate(words):
            pieces = [batch["idx"][i, p].item() for p, x in enumerate(row_w) if x == w]
            assert pieces == tok.encode(word, add_special_tokens=False).ids
    last = wid[-1].tolist()
    assert last.count(0) == 3  # "Unaffable" -> 3 pieces, only the first labelled
    preds = align_word_predictions(tg.clamp(min=0), wid, [len(w) for w, _ in examples])
    assert preds == [list(t) for _, t in examples]


def test_token_classification_truncation_and_bpe(tok: Tokenizer, bpe: Tokenizer) -> None:
    words = ["word"] * 20
    batch = TokenClassificationCollator(tok, 8)([(words, [1] * 20)])
    assert batch["idx"].shape[1] == 8 and batch["idx"][0, -1] == tok.sep_id
    preds = align_word_predictions(batch["targets"].clamp(min=0), batch["word_ids"], [20], fill=-1)
    assert preds[0][:6] == [1] * 6 and preds[0][6:] == [-1] * 14
    b = TokenClassificationCollator(bpe, 32)([(["Hello", "world"], [3, 4])])
    assert "token_type_ids" not in b
    ids = b["idx"][0][b["attention_mask"][0].bool()].tolist()
    assert ids == bpe.encode("Hello world", add_special_tokens=False).ids  # leading space handled


# --------------------------------------------------------------------------------------
# Extractive QA
# --------------------------------------------------------------------------------------


def test_locate_answer() -> None:
    ctx = "PEOPLE FACE TRADEOFFS. Later, people face  tradeoffs again."
    assert locate_answer(ctx, "PEOPLE FACE", 0) == (0, 11)
    assert locate_answer(ctx, "people face tradeoffs", 3) == (0, 21)  # case-insensitive, nearest to 3
    assert locate_answer(ctx, "Face Tradeoffs again", None) == (37, 58)  # case and runs of spaces
    assert locate_answer(ctx, "not there", None) is None
    assert locate_answer(ctx, "again. ", None) == (53, 59)
    # A given start inside a longer word loses to a word-aligned occurrence.
    ctx2 = "financial intermediaries. The term of a bond"
    assert locate_answer(ctx2, "term", 15) == (30, 34)
    assert locate_answer("intermediaries", "term", 2) is None  # only inside a word
    assert locate_answer("利率上升了", "上升", 2) == (2, 4)  # CJK characters are words of their own


def test_qa_features_reproduce_gold_spans(squad, qa_features, tok: Tokenizer) -> None:
    feats = qa_features
    ids = {e.id for e in squad.examples}
    assert {f.example_id for f in feats} == ids and len(ids) == 158
    answerable = 0
    windows_with_answer = 0
    for ex in squad.examples:
        mine = [f for f in feats if f.example_id == ex.id]
        assert [f.window for f in mine] == list(range(len(mine)))
        gold = mine[0].answer_text  # the first answer found in the context, word-aligned
        if gold is None:
            # Most answers of this subset are not spans of their context (multiple-choice texts).
            assert all(f.targets == (0, 0) for f in mine), ex.id
            continue
        assert normalize_answer(gold) in {normalize_answer(a["text"]) for a in ex.answers}
        answerable += 1
        hits = [f for f in mine if f.targets != (0, 0)]
        assert hits, f"{ex.id}: no window contains {gold!r}"
        for f in hits:
            s, e = f.targets
            assert f.context_start <= s <= e < f.context_start + f.num_context_tokens
            span = f.offset_mapping
            text = f.context[span[s][0]: span[e][1]]
            assert normalize_answer(text) == normalize_answer(gold), (ex.id, text, gold)
            windows_with_answer += 1
    # The reader located 34 answers; 2 of them only inside longer words ("8 percent" in "28 percent").
    reader_spans = sum(any(a["answer_start"] is not None for a in ex.answers) for ex in squad.examples)
    assert reader_spans - 3 <= answerable <= reader_spans and answerable >= 30
    assert windows_with_answer >= 2 * answerable  # windows overlap: answers appear in several
    # Window geometry: at most max_len tokens; consecutive windows start doc_stride apart.
    f0, f1 = feats[0], feats[1]
    assert len(f0) == 384 and f0.idx[0] == tok.cls_id and f0.idx[-1] == tok.sep_id
    assert f1.char_span(f1.context_start) == f0.char_span(f0.context_start + 128)
    q_len = len(f0.question_ids)
    assert f0.token_type_ids == [0] * (q_len + 2) + [1] * (384 - q_len - 2)
    assert f0.offset_mapping[: q_len + 2] == [None] * (q_len + 2) and f0.offset_mapping[-1] is None


def test_qa_features_from_raw_squad_json_match_reader(shared_data: Path, qa_features, tok: Tokenizer) -> None:
    raw = squad_examples(shared_data / "squad-mini" / "dev-v1.1-subset.json")
    assert len(raw) == 158
    again = prepare_qa_features(raw[:40], tok)
    assert [(f.example_id, f.targets) for f in again] == [(f.example_id, f.targets) for f in qa_features[: len(again)]]


def test_postprocess_one_hot_logits_give_gold_text(squad, qa_features) -> None:
    feats = qa_features
    T = max(len(f) for f in feats)
    start = np.zeros((len(feats), T), dtype=np.float32)
    end = np.zeros((len(feats), T), dtype=np.float32)
    for i, f in enumerate(feats):
        s, e = f.targets
        start[i, s] = 10.0
        end[i, e] = 10.0
    best = postprocess_qa(feats, torch.from_numpy(start), torch.from_numpy(end), n_best=20, max_answer_len=30)
    assert set(best) == {e.id for e in squad.examples}
    checked = 0
    for ex in squad.examples:
        mine = [f for f in feats if f.example_id == ex.id]
        gold = mine[0].answer_text
        if gold is None:
            continue
        s, e = next(f.targets for f in mine if f.targets != (0, 0))
        if e - s + 1 > 30:
            continue  # longer than max_answer_len: not a valid prediction
        assert normalize_answer(best[ex.id]) == normalize_answer(gold), ex.id
        checked += 1
    assert checked >= 30
    nbest = qa_nbest(feats[:50], start[:50], end[:50], n_best=5)
    for preds in nbest.values():
        assert len(preds) <= 5
        assert all(a.score >= b.score for a, b in zip(preds, preds[1:]))
        assert abs(sum(p.probability for p in preds) - 1.0) < 1e-6 if preds else True


def test_postprocess_respects_validity() -> None:
    from gptbert.data.collate import QAFeature, SpecialTemplate

    ctx = "alpha beta gamma delta"
    ids = np.arange(4)
    offs = np.array([[0, 5], [6, 10], [11, 16], [17, 22]])
    tmpl = SpecialTemplate((101,), (102,), (102,), (102,))
    f = QAFeature("q", 0, ctx, [7, 8], ids, offs, 0, 4, tmpl, (0, 0), None)
    assert f.context_start == 4 and len(f) == 9
    s = np.full((1, 9), -5.0)
    e = np.full((1, 9), -5.0)
    s[0, 0] = e[0, 0] = 100.0  # CLS: outside the context, never chosen
    s[0, 6], e[0, 5] = 9.0, 9.0  # end before start: invalid
    e[0, 7], e[0, 6] = 2.0, 0.5
    assert postprocess_qa([f], s, e)["q"] == "gamma delta"  # 9 + 2
    assert postprocess_qa([f], s, e, max_answer_len=1)["q"] == "gamma"  # 9 + 0.5
    nbest = qa_nbest([f], s, e, n_best=3)["q"]
    assert [p.text for p in nbest][:2] == ["gamma delta", "gamma"]
    assert (nbest[0].start_char, nbest[0].end_char, nbest[0].feature_index) == (11, 22, 0)
    assert qa_nbest([f], np.full((1, 9), -np.inf), e)["q"] == []


def test_qa_collator(qa_features, tok: Tokenizer) -> None:
    feats = qa_features[:6]
    batch = QACollator(tok)(feats)
    assert set(batch) == {"idx", "attention_mask", "token_type_ids", "targets"}
    assert batch["targets"].shape == (6, 2)
    assert batch["idx"][0].tolist() == feats[0].idx
    assert batch["targets"].tolist() == [list(f.targets) for f in feats]


# --------------------------------------------------------------------------------------
# Conditional LM
# --------------------------------------------------------------------------------------


def test_conditional_lm_loss_only_on_target(bpe: Tokenizer, shared_data: Path) -> None:
    blocks = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").split("\n\n")[:12]
    examples = [(blocks[i], blocks[i + 1].split("\n")[0]) for i in range(0, 12, 2)]
    coll = ConditionalLMCollator(bpe, 64, separator=" TL;DR:")
    batch = coll(examples)
    idx, targets, attn = batch["idx"], batch["targets"], batch["attention_mask"]
    sep = bpe.encode(" TL;DR:", add_special_tokens=False).ids
    for i, (prompt, target) in enumerate(examples):
        p = bpe.encode(prompt, add_special_tokens=False).ids
        t = bpe.encode(target, add_special_tokens=False).ids
        n = int(attn[i].sum())
        row, tg = idx[i, :n].tolist(), targets[i, :n].tolist()
        supervised = [x for x in tg if x != IGNORE_INDEX]
        assert supervised == t + [bpe.eos_id], "loss must cover exactly the target and its eos"
        assert tg[: n - len(supervised)] == [IGNORE_INDEX] * (n - len(supervised))
        seq = row + [tg[-1]]
        assert seq[-len(t) - 1 - len(sep): -len(t) - 1] == sep
        kept = seq[: -len(t) - 1 - len(sep)]
        assert kept == p[len(p) - len(kept):], "prompt must lose tokens from its start"
        assert n <= 64 and (n == 64 or kept == p)
        assert torch.equal(targets[i, : n - 1][targets[i, : n - 1] != IGNORE_INDEX],
                           idx[i, 1:n][targets[i, : n - 1] != IGNORE_INDEX])
    assert (targets[attn == 0] == IGNORE_INDEX).all()

    gen = coll([{"prompt": p} for p, _ in examples])
    assert "targets" not in gen and (gen["attention_mask"][:, -1] == 1).all()
    assert gen["idx"][0, -len(sep):].tolist() == sep


def test_conditional_lm_defaults_and_long_targets(tok: Tokenizer) -> None:
    coll = ConditionalLMCollator(tok, 10)
    assert coll.separator == [tok.sep_id]
    idx, tg = coll.build("a question here", " ".join(["word"] * 30))
    word = tok.encode("word", add_special_tokens=False).ids
    assert len(word) == 1
    assert idx == [tok.sep_id] + word * 9  # no room for the prompt; the target is cut, no eos
    assert tg == word * 10
