"""``gptbert data profile|augment`` and ``gptbert tokenizer train``, in-process and as a subprocess."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gptbert.cli import main
from gptbert.cli.data import add_augment_arguments, add_augment_subcommand, cmd_augment
from gptbert.data.readers import read_task_file

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "gptbert", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_profile_bad_rows_is_one_line_error(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["data", "profile", str(shared_data / "banking77" / "train.tsv")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("gptbert data: error:")
    assert "13 bad rows" in err and "train.tsv:273: no tab separator" in err and "--skip-bad-rows" in err


def test_profile_skip_and_json(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports" / "banking.json"
    args = ["data", "profile", str(shared_data / "banking77" / "train.tsv"), "--skip-bad-rows", "--json-out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "bad rows skipped  13" in printed and "label distribution:" in printed
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["n_examples"] == 9003 and report["n_bad_rows"] == 13 and report["n_labels"] == 77
    assert not [p for p in out.parent.iterdir() if p.name != "banking.json"]  # no temp files left
    # Never overwrite without --force.
    assert main(args) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0


def test_profile_with_tokenizer_to_stdout(shared_data: Path, minilm_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["data", "profile", str(shared_data / "sst2" / "dev.tsv"), "--tokenizer", str(minilm_dir),
               "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["length"]["unit"] == "tokens" and report["unk_rate"] == 0.0
    assert report["label_counts"] == {"1": 444, "0": 428}


def test_profile_corpus_and_columns(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "profile", str(shared_data / "sst2" / "rt_snippets.txt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_examples"] == 10605
    assert main(["data", "profile", str(shared_data / "snips" / "dev.tsv"), "--label-column", "intent"]) == 2
    assert "no label column 'intent'" in capsys.readouterr().err
    assert main(["data", "profile", str(tmp_path / "nothing.tsv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_data_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data"]) == 2
    assert "profile" in capsys.readouterr().out


def test_tokenizer_train_subprocess(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "shakespeare.txt"
    src.write_text("\n".join((shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
                             .splitlines()[:6000]) + "\n", encoding="utf-8")
    out = tmp_path / "bpe"
    res = _run("tokenizer", "train", "--kind", "bpe", "--vocab-size", "600", "--out", str(out), "--quiet", str(src))
    assert res.returncode == 0, res.stderr
    assert {"tokenizer.json", "vocab.json", "merges.txt", "gptbert_tokenizer.json"} <= {p.name for p in out.iterdir()}
    before = (out / "vocab.json").read_bytes()
    # A non-empty output folder is not replaced without --force.
    res = _run("tokenizer", "train", "--kind", "wordpiece", "--vocab-size", "600", "--out", str(out), str(src))
    assert res.returncode == 2 and "not empty; pass --force" in res.stderr
    assert (out / "vocab.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_tokenizer_train_in_process_from_task_file(shared_data: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wp"
    out.mkdir()
    (out / "old.txt").write_text("old", encoding="utf-8")
    args = ["tokenizer", "train", "--kind", "wordpiece", "--vocab-size", "2000", "--out", str(out), "--quiet",
            str(shared_data / "sst2" / "dev.tsv"), str(shared_data / "snips" / "dev.tsv")]
    assert main(args) == 2
    assert main([*args, "--force"]) == 0
    assert "wordpiece tokenizer" in capsys.readouterr().out
    assert not (out / "old.txt").exists() and (out / "vocab.txt").is_file()
    from gptbert.tokenizer import Tokenizer

    tok = Tokenizer.load(out)
    assert tok.kind == "wordpiece" and tok.lowercase
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "play some music"]) == 0
    assert "[CLS]" in capsys.readouterr().out
    assert main(["tokenizer", "train", "--kind", "bpe", "--vocab-size", "10", "--out", str(tmp_path / "x"),
                 "--quiet", str(shared_data / "sst2" / "rt_snippets.txt")]) == 2
    assert "too small" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_cli_modules_do_not_import_torch() -> None:
    code = ("import sys, gptbert.cli.data, gptbert.cli.tokenizer; "
            "bad = [m for m in ('torch', 'tokenizers', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr


def test_pairs_from_shakespeare_split_by_corpus_order(shared_data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from gptbert.data.readers import read_pairs_file

    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    argv = ["data", "pairs", "--kind", "speech-first-line", "--corpus", str(shared_data / "tinyshakespeare" / "input.txt"),
            "--out", str(train), "--dev-out", str(dev), "--dev-size", "50", "--limit", "300"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["pairs"] == 250 and report["dev"]["pairs"] == 50
    rows = [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines()]
    assert all(r["source"].startswith(r["target"]) and len(r["source"]) > len(r["target"]) for r in rows)
    assert not {r["source"] for r in rows} & {json.loads(x)["source"] for x in dev.read_text().splitlines()}
    assert len(read_pairs_file(str(dev))) == 50  # the generate task reads what this writes
    train.write_text("keep me")
    assert main(argv) == 2 and train.read_text() == "keep me"  # never overwrites without --force
    assert main(["data", "pairs", "--kind", "snippet-first-clause", "--corpus", str(tmp_path / "none.txt"),
                 "--out", str(tmp_path / "x.jsonl")]) == 2


def test_squad_split_by_article_with_cloze_questions(shared_data: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from gptbert.tasks.qa import read_questions

    train, dev = tmp_path / "train.json", tmp_path / "dev.json"
    dev_titles = ["THINKING LIKE AN ECONOMIST", "TEN PRINCIPLES OF ECONOMICS"]
    argv = ["data", "squad", str(shared_data / "squad-mini" / "dev-v1.1-subset.json"), "--out", str(train),
            "--dev-out", str(dev), "--dev-title", dev_titles[0], "--dev-title", dev_titles[1],
            "--dev-answerable-only", "--cloze", "200", "--window", "800"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    # squad-mini: 158 questions; the two dev chapters hold 63 of them, 18 with span answers.
    assert report["train"] == {"path": str(train), "questions": 95, "answerable": 16, "cloze": 200, "articles": 4}
    assert report["dev"]["questions"] == report["dev"]["answerable"] == 18
    tr, dv = list(read_questions(train)), list(read_questions(dev))
    assert len(tr) == 295 and len(dv) == 18 and all(e.answerable for e in dv)
    assert not {e.title for e in tr} & set(dev_titles) and {e.title for e in dv} == set(dev_titles)
    full = {e.title: e.context for e in read_questions(shared_data / "squad-mini" / "dev-v1.1-subset.json")}
    assert all(e.context == full[e.title] for e in dv)  # dev keeps whole chapters
    cloze = [e for e in tr if e.id.startswith("cloze-")]
    assert len(cloze) == 200
    for e in cloze:
        a = e.answers[0]
        assert len(e.context) <= 800 + len(a["text"]) and e.context in full[e.title]
        assert e.context[a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]  # a real span
        assert 1 <= len(a["text"].split()) <= 5 and len(e.question.split()) >= 5
        # the question is the text right before the answer in the chapter (whitespace normalised)
        assert " ".join(f"{e.question} {a['text']}".split()) in " ".join(full[e.title].split())
    assert main(argv) == 2  # never overwrites without --force
    assert main([*argv, "--dev-window", "800", "--force"]) == 0
    capsys.readouterr()
    assert all(len(e.context) <= 800 + len(e.answers[0]["text"]) and e.context in full[e.title]
               for e in read_questions(dev))
    assert main([*argv[:7], "--dev-title", "NO SUCH CHAPTER", "--force"]) == 2
    assert "no article titled 'NO SUCH CHAPTER'" in capsys.readouterr().err


def test_cmd_augment(tmp_path: Path, shared_data: Path) -> None:
    src = tmp_path / "train.tsv"
    src.write_text("\n".join((shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[:101])
                   + "\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_augment_arguments(parser)
    out = tmp_path / "aug.tsv"
    args = parser.parse_args([str(src), "-o", str(out), "--n-aug", "2", "--seed", "3", "--include-original",
                              "--vocab-from", str(shared_data / "sst2" / "rt_snippets.txt")])
    assert cmd_augment(args) == 0
    data = read_task_file(out)
    orig = read_task_file(src)
    assert len(data) == 300 and data.texts[:100] == orig.texts
    assert data.labels[100:] == [l for l in orig.labels for _ in range(2)]
    with open(out, encoding="utf-8") as f:
        assert next(csv.reader(f, delimiter="\t")) == ["text", "label"]

    from gptbert.cli import CLIError

    with pytest.raises(CLIError):  # exists, no --force
        cmd_augment(args)
    with pytest.raises(CLIError):
        cmd_augment(parser.parse_args([str(src), "-o", str(tmp_path / "x.tsv"), "--methods", "contextual"]))

    # The subcommand hook builds a working parser for `gptbert data augment`.
    top = argparse.ArgumentParser()
    sub = top.add_subparsers()
    add_augment_subcommand(sub)
    ns = top.parse_args(["augment", str(src), "-o", str(tmp_path / "b.tsv"), "--force"])
    assert ns.func is cmd_augment and ns.func(ns) == 0


def test_augment_writes_quoted_texts_back_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "train.tsv"
    texts = ['he said "hi" twice', 'a "quoted" word here', "plain text with some words"]
    src.write_text("text\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(texts)), encoding="utf-8")
    out = tmp_path / "aug.tsv"
    assert main(["data", "augment", str(src), "-o", str(out), "--include-original", "--methods", "swap"]) == 0
    back = read_task_file(out)
    assert back.texts[:3] == texts and len(back) == 6
    assert 'he said "hi" twice' in out.read_text(encoding="utf-8")
    assert main(["data", "augment", str(src), "-o", str(out)]) == 2  # exists, no --force
    assert "already exists; pass --force" in capsys.readouterr().err
