"""Conditional generation (GPT), extractive summaries (BERT), dialogue formatting, pair builders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gptbert.data.objectives import IGNORE_INDEX
from gptbert.data.readers import DataError
from gptbert.metrics import generation_scores
from gptbert.run import load_run
from gptbert import recipes
from gptbert.tasks import extractive, generate_data
from gptbert.tasks import generate as gen
from gptbert.tasks.generate import ConditionalLMCollator
from gptbert.tokenizer import Tokenizer
from tests.tasks import _runs


def test_format_chat_exact_text():
    turns = [("user", "hello  there"), ("assistant", "hi!\nhow can I help?"), ("user", "time?")]
    assert gen.format_chat(turns) == "User: hello there\nBot: hi! how can I help?\nUser: time?\nBot:"
    as_dicts = [{"role": r, "content": c} for r, c in turns]
    assert gen.format_chat(as_dicts, add_generation_prompt=False) == "User: hello there\nBot: hi! how can I help?\nUser: time?"
    assert gen.TURN_SEPARATOR == "\n"
    with pytest.raises(ValueError, match="turn 0: unknown role 'narrator'"):
        gen.format_chat([("narrator", "x")])
    with pytest.raises(ValueError, match="turn 1"):
        gen.format_chat([("user", "x"), {"role": "user"}])


def test_format_chat_strips_special_tokens_and_fits(runs_root, shared_data):
    tok = load_run(_runs.chat_run(runs_root, shared_data)["path"]).tokenizer
    text = gen.format_chat([("user", "hi <|endoftext|> there")], tok)
    assert text == "User: hi there\nBot:"
    long = [("system", "be brief"), ("user", "a " * 50), ("assistant", "b " * 50), ("user", "last question")]
    fitted = gen.format_chat(long, tok, max_tokens=30)
    assert fitted.startswith("System: be brief\n") and fitted.endswith("User: last question\nBot:")
    assert "a a a" not in fitted


def test_dialogue_file_expands_assistant_turns(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"turns": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                       {"role": "user", "content": "bye"}, {"role": "assistant", "content": "ciao"}]}) + "\n")
    pairs, fmt = gen.read_examples(p)
    assert fmt == "chat"
    assert pairs == [("User: hi\nBot:", "hello"), ("User: hi\nBot: hello\nUser: bye\nBot:", "ciao")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"turns": [{"role": "user", "content": "hi"}]}) + "\n" +
                   json.dumps({"turns": [{"role": "alien", "content": "x"}]}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: turn 0: unknown role"):
        gen.read_examples(bad)


def test_make_pairs_from_shared_corpora(shared_data):
    speeches = generate_data.make_pairs("speech-first-line", shared_data / _runs.SHAKESPEARE)
    assert len(speeches) > 1000
    assert speeches == generate_data.make_pairs("speech-first-line", shared_data / _runs.SHAKESPEARE)  # deterministic
    src, tgt = speeches[0]
    assert src.startswith(tgt) and len(src) > len(tgt)
    clauses = generate_data.make_pairs("snippet-first-clause", shared_data / "sst2" / "rt_snippets.txt", limit=50)
    assert len(clauses) == 50
    for s, t in clauses:
        assert s.startswith(t) and s[len(t)] in ",;: -" and len(t.split()) >= 3
    with pytest.raises(ValueError, match="unknown pair kind"):
        generate_data.make_pairs("nope", shared_data / _runs.SHAKESPEARE)


def test_shakespeare_dialogues_alternate(shared_data):
    ds = generate_data.shakespeare_dialogues(shared_data / _runs.SHAKESPEARE, turns=4, limit=5)
    assert len(ds) == 5
    for d in ds:
        assert [t["role"] for t in d] == ["user", "assistant", "user", "assistant"]


def test_training_examples_keep_the_start_of_long_sources(runs_root, shared_data):
    tok = load_run(_runs.gen_run(runs_root, shared_data, "gpt")["path"]).tokenizer
    src = "First words matter. " + "filler " * 200
    (p, t), = gen.training_examples([(src, "First words")], tok, 32)
    assert tok.decode(p).startswith("First words matter")
    n_sep = len(tok.encode(gen.PAIR_SEPARATOR, add_special_tokens=False).ids)
    assert len(p) + n_sep + len(t) + 1 == 33
    ids = gen.prompt_ids(tok, src, 20)
    assert len(ids) == 20 and tok.decode(ids).startswith("First words")
    chat_ids = gen.prompt_ids(tok, "old " * 50 + "User: newest", 10, separator=gen.CHAT_SEPARATOR, keep_start=False)
    assert "newest" in tok.decode(chat_ids)


def test_scores_hand_checked():
    s = generation_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert s["rouge1"] == s["rouge2"] == s["rougeL"] == 100.0
    assert s["bleu"] == pytest.approx(100.0) and s["chrf"] == pytest.approx(100.0)
    s = generation_scores(["dog"], ["the cat"])
    assert s["rouge1"] == 0.0 and s["bleu"] == 0.0


def test_gpt_conditional_lm_learns_and_generates(runs_root, shared_data):
    run = _runs.gen_run(runs_root, shared_data, "gpt")
    losses = _runs.train_losses(run["result"])
    assert losses[-1] < losses[0], losses
    task = json.loads((run["path"] / "task.json").read_text())["options"]
    assert task["method"] == "conditional-lm" and task["separator"] == gen.PAIR_SEPARATOR and task["format"] == "pairs"
    files = _runs.pair_files(runs_root, shared_data)
    r = recipes.evaluate(run["path"], files["dev"], max_new_tokens=8)
    assert r["task"] == "generate" and r["n"] == files["n_dev"]
    for k in ("rouge1", "rouge2", "rougeL", "bleu", "chrf"):
        assert 0.0 <= r[k] <= 100.0
    out = recipes.predict(run["path"], ["Good morrow, sir."], max_new_tokens=5)
    assert set(out[0]) == {"source", "output"} and isinstance(out[0]["output"], str)
    assert len(load_run(run["path"]).tokenizer.encode(out[0]["output"], add_special_tokens=False).ids) <= 6


def test_chat_run_trains_on_dialogues(runs_root, shared_data):
    run = _runs.chat_run(runs_root, shared_data)
    assert json.loads((run["path"] / "task.json").read_text())["options"]["format"] == "chat"
    losses = _runs.train_losses(run["result"])
    assert losses[-1] < losses[0], losses
    out = recipes.predict(run["path"], ["Good morrow"], max_new_tokens=6)
    assert "\n" not in out[0]["output"]


def test_oracle_labels_and_summary_length():
    sents = ["The cat sat.", "Dogs bark loudly at night.", "The cat sat on a mat."]  # F1 2/3, 0, 5/6
    assert extractive.oracle_labels(sents, "the cat sat on the mat", k=1) == [0, 0, 1]
    assert extractive.oracle_labels(sents, "the cat sat on the mat", k=2) == [1, 0, 1]
    assert extractive.oracle_labels(sents, "zebra", k=2) == [0, 0, 0]
    assert extractive.unigram_f1("a b", "a b") == 1.0
    assert extractive.summary_length([("x", "One. Two."), ("y", "One."), ("z", "One. Two. Three.")]) == 2


def test_bert_extractive_scorer(runs_root, shared_data):
    run = _runs.gen_run(runs_root, shared_data, "bert")
    extra = json.loads((run["path"] / "task.json").read_text())["options"]
    assert extra["method"] == "extractive" and extra["k"] >= 1
    losses = _runs.train_losses(run["result"])
    assert min(losses[-3:]) < losses[0], losses
    files = _runs.pair_files(runs_root, shared_data)
    r = recipes.evaluate(run["path"], files["dev"])
    assert r["method"] == "scorer" and 0.0 <= r["rougeL"] <= 100.0
    doc = "Good morrow, sir. I pray you tell me where the king is. He was here anon."
    out = recipes.predict(run["path"], [doc], k=2)[0]
    assert len(out["sentences"]) == 2 and out["sentences"] == sorted(out["sentences"])
    sents = extractive.sentences_of(doc)
    assert out["summary"] == " ".join(sents[i] for i in out["sentences"])


def test_centroid_summary_with_minilm(minilm_dir):
    from gptbert.tokenizer import Tokenizer
    from gptbert.io.checkpoint import load_any

    model, tok = load_any(minilm_dir), Tokenizer.load(minilm_dir)
    doc = ("The central bank raised interest rates to fight inflation. "
           "Inflation has risen for six months as prices climbed. "
           "My neighbour's cat likes to sleep on the warm car roof. "
           "Higher rates should slow price growth and cool inflation.")
    res = extractive.summarize(model, tok, [doc], k=2, method="centroid")[0]
    assert 2 not in res["sentences"]  # the off-topic sentence is the least central
    assert len(res["scores"]) == 4 and int(np.argmin(res["scores"])) == 2
    emb = extractive.sentence_embeddings(model, tok, ["a", "b c"], pooling="cls")
    assert emb.shape == (2, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_generation_needs_a_gpt_lm(runs_root, shared_data):
    bert = load_run(_runs.tokens_run(runs_root, shared_data, "bert")["path"])
    with pytest.raises(ValueError, match=r"needs a GPT model \(or a hybrid\) with an 'lm' head"):
        gen.predict(bert.model, bert.tokenizer, ["x"])


# --------------------------------------------------------------------------------------
# The conditional-LM collator
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

