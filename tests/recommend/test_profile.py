"""profile_data_file: the data layer's profile of whatever training file the priors are given."""

from __future__ import annotations

import json
import logging

import pytest

from gptbert.recommend import profile_data_file, recommend_from_priors


def test_corpus_tokens_and_squad_files(tmp_path, caplog):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one two three\n\nfour five\n")
    prof = profile_data_file(corpus)
    assert prof["n_examples"] == 2 and prof["length"]["unit"] == "words" and prof["length"]["max"] == 3
    tokens = tmp_path / "ner.jsonl"
    tokens.write_text("".join(json.dumps({"tokens": ["I", "took", "30"], "tags": ["O", "O", "B-NUM"]}) + "\n"
                              for _ in range(4)))
    with caplog.at_level(logging.WARNING):
        prof = profile_data_file(tokens)
    assert prof["n_examples"] == 4 and prof["length"]["max"] == 3 and not prof["has_labels"]
    assert not caplog.records  # the failed guesses (a task file, an unlabelled one) say nothing
    squad = tmp_path / "dev.json"
    para = {"context": "The index adds two rates.", "qas": [
        {"id": "q1", "question": "What does it add?", "answers": [{"text": "two rates", "answer_start": 15}]}]}
    squad.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [para]}]}))
    prof = profile_data_file(squad)
    assert prof["n_examples"] == 1 and prof["has_pairs"] and prof["length"]["max"] == 4 + 5
    assert "1 labelled examples" in recommend_from_priors("qa", prof).text


def test_unreadable_file_names_the_data_layer_problem(tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("sentence,intent\nhello,greet\n")
    with pytest.raises(ValueError, match="no text column 'text'"):
        profile_data_file(bad)
    with pytest.raises(FileNotFoundError):
        profile_data_file(tmp_path / "missing.tsv")
