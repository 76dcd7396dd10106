"""``gptbert finetune --task tokens|qa|generate``, ``predict``, ``evaluate``, ``fill-mask``, ``embed``, ``chat``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gptbert.cli import main
from tests.tasks import _runs

REPO = Path(__file__).resolve().parents[2]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_finetune_tokens_predict_evaluate(capsys, runs_root, shared_data, tmp_path):
    files = _runs.tagging_files(runs_root, shared_data)
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "finetune", "--model", "bert-tiny", "--task", "tokens",
                             "--train", str(files["train"]), "--dev", str(files["dev"]), "--out", str(out),
                             "--vocab-size", "500", "--max-len", "48", "--max-steps", "6", "--batch-size", "16",
                             "--no-progress", "--no-tensorboard", "--device", "cpu", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["steps"] == 6 and 0.0 <= summary["dev"]["f1"] <= 1.0
    code, stdout, err = _run(capsys, "predict", str(out), "--text", "I took out 30 pounds", "twice")
    assert code == 0, err
    lines = [json.loads(x) for x in stdout.splitlines()]
    assert [w for w, _ in lines[0]["tags"]] == ["I", "took", "out", "30", "pounds"] and len(lines) == 2
    report = tmp_path / "eval.json"
    code, stdout, err = _run(capsys, "evaluate", str(out), "--data", str(files["dev"]), "--json-out", str(report))
    assert code == 0, err
    assert "precision" in stdout and "entity type" in stdout and f"wrote {report}" in stdout
    result = json.loads(report.read_text())
    assert result["task"] == "tokens" and result["n"] == 40 and result["f1"] == pytest.approx(summary["dev"]["f1"])
    # Default JSON location: inside the run directory.
    code, stdout, _ = _run(capsys, "evaluate", str(out), "--data", str(files["dev"]), "--max-examples", "5")
    assert code == 0 and (out / "eval-dev.jsonl.json").is_file()
    assert json.loads((out / "eval-dev.jsonl.json").read_text())["n"] == 5


def test_predict_and_evaluate_qa(capsys, runs_root, shared_data, tmp_path):
    run = _runs.qa_run(runs_root, shared_data, "bert")
    files = _runs.qa_files(runs_root, shared_data)
    context = "The misery index adds the inflation rate and the unemployment rate."
    code, stdout, err = _run(capsys, "predict", str(run["path"]), "--question", "What does the index add?",
                             "--context", context)
    assert code == 0, err
    a = json.loads(stdout)
    assert context[a["start"]:a["end"]] == a["answer"]
    code, stdout, err = _run(capsys, "evaluate", str(run["path"]), "--data", str(files["dev"]), "--json")
    assert code == 0, err
    assert "n_answerable" in stdout and "exact_match" in stdout
    code, stdout, err = _run(capsys, "evaluate", str(run["path"]), "--data", str(files["dev"]), "--top-windows", "1",
                             "--json")
    assert code == 0, err
    assert json.loads(stdout[stdout.index("{"):])["n"] == files["n_dev"]
    code, _, err = _run(capsys, "evaluate", str(run["path"]), "--data", str(files["dev"]), "--top-windows", "0")
    assert code == 2 and "top_windows=0: expected at least 1" in err
    long_context = " ".join(["Boats came and went all day long in the rain."] * 60 + [context])
    code, stdout, err = _run(capsys, "predict", str(run["path"]), "--question", "What does the misery index add?",
                             "--context", long_context, "--top-windows", "1")
    assert code == 0, err
    a = json.loads(stdout)
    assert a["start"] >= long_context.index("The misery index") - 300  # read only the matching window
    code, _, err = _run(capsys, "predict", str(run["path"]), "--question", "q?")
    assert code == 2 and "--question needs --context" in err
    jl = tmp_path / "q.jsonl"
    jl.write_text(json.dumps({"question": "What rises?", "context": context}) + "\n")
    code, stdout, err = _run(capsys, "predict", str(run["path"]), "--input", str(jl), "--out", str(tmp_path / "o.jsonl"))
    assert code == 0 and len((tmp_path / "o.jsonl").read_text().splitlines()) == 1


def test_predict_generate_from_file(capsys, runs_root, shared_data, tmp_path):
    run = _runs.gen_run(runs_root, shared_data, "gpt")
    src = tmp_path / "in.txt"
    src.write_text("Good morrow, sir.\n\nWhere is the king?\n")
    code, stdout, err = _run(capsys, "predict", str(run["path"]), "--input", str(src), "--max-new-tokens", "4")
    assert code == 0, err
    assert [json.loads(x)["source"] for x in stdout.splitlines()] == ["Good morrow, sir.", "Where is the king?"]


def test_predict_sampling_is_reproducible_with_a_seed(capsys, runs_root, shared_data):
    run = _runs.gen_run(runs_root, shared_data, "gpt")
    argv = ["predict", str(run["path"]), "--text", "Good morrow, sir.", "--max-new-tokens", "12", "--temperature", "1.5"]

    def sample(seed: str) -> str:
        code, stdout, err = _run(capsys, *argv, "--seed", seed)
        assert code == 0, err
        return json.loads(stdout)["output"]

    assert sample("1") == sample("1")
    assert len({sample(str(s)) for s in range(2, 7)}) > 1  # sampling, not greedy


def test_fill_mask(capsys, runs_root, shared_data, minilm_dir):
    run = _runs.pretrain_run(runs_root, shared_data, "bert")
    code, stdout, err = _run(capsys, "fill-mask", str(run["path"]), "the movie was [MASK] .", "--top-k", "4")
    assert code == 0, err
    rows = stdout.strip().splitlines()
    assert rows[0].startswith("token") and len(rows) == 5
    probs = [float(r.split()[1]) for r in rows[1:] if len(r.split()) >= 3]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    code, stdout, _ = _run(capsys, "fill-mask", str(run["path"]), "the movie was [MASK] .", "--json")
    assert code == 0 and len(json.loads(stdout)) == 5
    code, _, err = _run(capsys, "fill-mask", str(minilm_dir), "the movie was [MASK] .")
    assert code == 2 and "cannot fill-mask" in err
    code, _, err = _run(capsys, "fill-mask", str(run["path"]), "no mask here")
    assert code == 2 and "mask token" in err


def test_embed(capsys, minilm_dir, tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("A man is eating food.\nA man is eating a piece of bread.\n\nThe girl is carrying a baby.\n")
    out = tmp_path / "e.npy"
    code, stdout, err = _run(capsys, "embed", str(minilm_dir), "--input", str(texts), "--out", str(out), "--normalize")
    assert code == 0, err
    x = np.load(out)
    assert x.shape == (3, 384) and json.loads(stdout)["shape"] == [3, 384]
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > 0.7 > x[0] @ x[2]
    code, _, err = _run(capsys, "embed", str(minilm_dir), "--text", "hello", "--out", str(tmp_path / "c.npy"),
                        "--pooling", "cls")
    assert code == 0 and np.load(tmp_path / "c.npy").shape == (1, 384)
    assert not np.allclose(np.linalg.norm(np.load(tmp_path / "c.npy"), axis=1), 1.0)  # not normalised


def test_chat_loop_in_process(runs_root, shared_data):
    from gptbert.cli.interact import ChatSession, chat_loop
    from gptbert.run import load_run

    session = ChatSession(load_run(_runs.chat_run(runs_root, shared_data)["path"]), max_new_tokens=6)
    out = io.StringIO()
    assert chat_loop(session, io.StringIO("hello there\n\n/reset\nhow now?\n"), out, stderr=io.StringIO()) == 0
    lines = out.getvalue().split("\n")
    assert lines[1] == "(conversation reset)" and len(lines) == 4 and lines[3] == ""
    assert [r for r, _ in session.history] == ["user", "assistant"]  # reset dropped the first exchange
    # The prompt holds the history in the dialogue format, ending with the bot prefix.
    text = session.tokenizer.decode(session.prompt_ids())
    assert text.startswith("User: how now?\nBot:")


def test_chat_subprocess_reads_piped_stdin(runs_root, shared_data):
    run = _runs.chat_run(runs_root, shared_data)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "gptbert", "chat", str(run["path"]), "--max-new-tokens", "5"],
                          input="hello\n/reset\nfarewell\n/quit\nnot read\n", capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "(conversation reset)"


def test_chat_needs_a_gpt(capsys, runs_root, shared_data):
    run = _runs.tokens_run(runs_root, shared_data, "bert")
    code, _, err = _run(capsys, "chat", str(run["path"]))
    assert code == 2 and "chat needs a GPT model" in err
