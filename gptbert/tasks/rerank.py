"""Generate-then-rerank: a generator proposes candidates, a BERT-family scorer reads
(input, candidate) pairs, and the two scores are fused.

For each source the generator (a GPT or hybrid generation run, or a bare LM that continues
its prompt) proposes ``num_candidates`` outputs: with method 'sample', its greedy output and
``num_candidates - 1`` samples; with 'beam', the finished hypotheses of a beam search of that
width. Each candidate gets

* ``logprob``: the generator's length-normalised log-probability, the mean log p of its new
  tokens (its end token included) given the prompt, computed by one teacher-forced pass (so it
  does not depend on the sampling temperature);
* ``scorer``: log P(good | source, candidate) of the scorer, a classifier with 2 labels (a
  ``--task rerank`` run, or any 2-label classify run: the label named good / 1 / positive /
  true / yes, else the second one, is "good");
* ``score = λ · logprob + (1 - λ) · scorer`` (both are log-probabilities); the highest wins.

``gptbert finetune --task rerank --generator RUN`` trains the scorer on a source/target file
(the generation task's formats): the references are the positives, the generator's own
candidates for the same sources (those that differ from the reference) the negatives. The
final dev evaluation tunes λ on the dev pairs (the corpus chrF of the reranked outputs over a
grid of :data:`WEIGHTS`) and the run keeps it in ``task.json`` (``options.weight``) with the
path of its generator, so ``gptbert predict RERANK_RUN`` and ``gptbert serve RERANK_RUN``
generate and rerank in one step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from gptbert.tasks.base import Fitting, Task, TaskOptions, TaskSplits
from gptbert.tasks.common import (
    ListDataset,
    generation_options,
    is_causal_lm,
    model_device,
    run_max_len,
    run_tokenizer,
    scalars,
    text_of,
)

RERANK_LABELS = ["bad", "good"]
"""The labels of a rerank run (the scorer's "good" is the second)."""
GOOD_LABELS = ("good", "1", "positive", "true", "yes")
"""Names of the "good" label of a 2-label classify run used as a scorer."""
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
"""The λ grid the dev evaluation tries."""
DEFAULT_WEIGHT = 0.5
"""λ of a scorer that was not tuned (a plain classify run)."""
DEFAULT_NUM_CANDIDATES = 8
MAX_DEV_SOURCES = 256
"""At most this many dev sources get candidates (generation is the slow part)."""


@dataclass
class RerankOptions(TaskOptions):
    """How a rerank run proposes candidates, and the λ its dev evaluation chose."""

    generator: str | None = None
    """The generator's run directory (its absolute path is kept)."""
    num_candidates: int = DEFAULT_NUM_CANDIDATES
    """Candidates per source (training negatives, dev tuning and predictions)."""
    method: str = "sample"
    """'sample': the greedy output and num_candidates - 1 samples; 'beam': a beam search's hypotheses."""
    temperature: float = 1.0
    """Sampling temperature of the candidates."""
    weight: float | None = None
    """λ: the weight of the generator's length-normalised log-prob (1 - λ: the scorer's); tuned on dev."""
    max_new_tokens: int | None = None
    seed: int = 0


# ---------------------------------------------------------------------------------------
# The generator and its candidates
# ---------------------------------------------------------------------------------------


@dataclass
class Generator:
    """What proposing candidates needs of a generation run."""

    model: nn.Module
    tokenizer: Any
    separator: str
    """Between a source and its output ('' for a bare LM, which continues its prompt)."""
    max_len: int
    max_new_tokens: int
    path: str = ""

    @classmethod
    def of_run(cls, run: Any) -> Generator:
        """The generator of a loaded run (a GPT or hybrid with an 'lm' head)."""
        from gptbert.tasks.generate import DEFAULT_MAX_NEW_TOKENS, GenerateOptions

        if not is_causal_lm(run.config):
            raise ValueError(f"{run.path}: a generator must be a GPT (or hybrid) model with an 'lm' head; this is a "
                             f"{run.config.family} model with head {run.config.head!r}")
        options = run.task.options
        tuned = isinstance(options, GenerateOptions) and options.method == "conditional-lm"
        if tuned and options.format == "chat":
            raise ValueError(f"{run.path}: reranking works with source/target generation runs, not dialogue runs")
        return cls(run.model, run_tokenizer(run), (options.separator or "") if tuned else "", run_max_len(run),
                   (options.max_new_tokens if tuned else None) or DEFAULT_MAX_NEW_TOKENS, str(run.path))


@dataclass
class _RunFiles:
    """A run directory read without :mod:`gptbert.run` (which reads the task table)."""

    path: Path
    model: nn.Module
    tokenizer: Any
    task: Any
    config: Any = field(init=False)

    def __post_init__(self) -> None:
        self.config = self.model.config  # type: ignore[assignment]


@dataclass
class _TaskFile:
    max_len: int
    options: Any


@lru_cache(maxsize=4)
def load_generator(path: str, device: str = "cpu") -> Generator:
    """The generator of a run directory (cached: a served rerank run loads its generator once)."""
    from gptbert.io.checkpoint import load_any
    from gptbert.io.layout import TASK_FILE, has_tokenizer
    from gptbert.tasks.generate import GenerateOptions
    from gptbert.tokenizer import Tokenizer

    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"generator {path}: no such run directory")
    if not has_tokenizer(p):
        raise ValueError(f"generator {path}: no tokenizer files")
    model = load_any(p, device=device).eval()
    options: Any = GenerateOptions()
    max_len = min(128, model.config.block_size)  # type: ignore[union-attr]
    if (p / TASK_FILE).is_file():
        try:
            data = json.loads((p / TASK_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p / TASK_FILE}: not valid JSON (line {e.lineno}): {e.msg}") from None
        max_len = int(data.get("max_len", max_len))
        if data.get("task") == "generate":
            options = GenerateOptions.from_dict(data.get("options") or {})
    run = _RunFiles(p, model, Tokenizer.load(p), _TaskFile(max_len, options))
    return Generator.of_run(run)


def _end_id(tok: Any) -> int:
    return tok.eos_id if tok.eos_id is not None else tok.sep_id


def _prompts(gen: Generator, sources: Sequence[str], max_new: int) -> list[list[int]]:
    from gptbert.tasks.generate import CHAT_SEPARATOR, prompt_ids

    block = gen.model.config.block_size  # type: ignore[union-attr]
    room = max(1, min(gen.max_len, block) - max_new)
    out = []
    for src in sources:
        ids = prompt_ids(gen.tokenizer, src, room, separator=gen.separator, keep_start=gen.separator != CHAT_SEPARATOR)
        out.append(ids or [_end_id(gen.tokenizer)])  # a bare LM's empty prompt starts from end-of-text
    return out


@torch.inference_mode()
def sequence_logprobs(model: nn.Module, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                      *, batch_size: int = 32) -> list[float]:
    """Mean log p of each continuation's tokens given its prompt (teacher forcing, causal mode)."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    out: list[float] = []
    try:
        for s in range(0, len(prompts), batch_size):
            rows = [list(p) + list(c) for p, c in zip(prompts[s:s + batch_size], continuations[s:s + batch_size])]
            starts = [len(p) for p in prompts[s:s + batch_size]]
            T = max(len(r) for r in rows)
            idx = torch.zeros(len(rows), T, dtype=torch.long)  # (B, T)
            mask = torch.zeros(len(rows), T, dtype=torch.long)  # (B, T)
            for i, r in enumerate(rows):
                idx[i, :len(r)] = torch.tensor(r)
                mask[i, :len(r)] = 1
            logits, _ = model(idx.to(device), attention_mask=mask.to(device))  # (B, T, V)
            logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
            for i, (r, p0) in enumerate(zip(rows, starts)):
                n = len(r) - p0
                if n <= 0:
                    out.append(float("-inf"))
                    continue
                tgt = torch.tensor(r[p0:], device=device)  # (n,)
                out.append(float(logp[i, p0 - 1:len(r) - 1].gather(1, tgt[:, None]).mean()))
    finally:
        model.train(was_training)
    return out


@dataclass
class Candidates:
    """A source's candidates with the generator's length-normalised log-probs; the first is the
    generator's own output (greedy, or the best beam)."""

    source: str
    texts: list[str]
    logprobs: list[float]


def propose(gen: Generator, sources: Sequence[str], num_candidates: int, *, method: str = "sample",
            temperature: float = 1.0, seed: int = 0, max_new_tokens: int | None = None, batch_size: int = 16,
            **generation: Any) -> list[Candidates]:
    """``num_candidates`` distinct candidates per source (fewer where the generator repeats itself)."""
    from gptbert.generate import GenerationConfig, generate
    from gptbert.generate.beam import beam_hypotheses

    if num_candidates < 1:
        raise ValueError(f"num_candidates: expected at least 1, got {num_candidates}")
    if method not in ("sample", "beam"):
        raise ValueError(f"rerank method: expected 'sample' or 'beam', got {method!r}")
    tok = gen.tokenizer
    block = gen.model.config.block_size  # type: ignore[union-attr]
    max_new = min(max_new_tokens or gen.max_new_tokens, block - 1)
    eos = _end_id(tok)
    base = GenerationConfig(max_new_tokens=max_new, eos_token_id=eos, pad_token_id=tok.pad_id,
                            repetition_penalty=float(generation.get("repetition_penalty") or 1.0))
    out: list[Candidates] = []
    for s in range(0, len(sources), batch_size):
        chunk = list(sources[s:s + batch_size])
        prompts = _prompts(gen, chunk, max_new)
        if method == "beam" and num_candidates > 1:
            per = beam_hypotheses(gen.model, prompts, base.replace(num_beams=num_candidates))
        else:
            per = [[ids] for ids in generate(gen.model, prompts, base)]  # type: ignore[union-attr]
            if num_candidates > 1:
                sampled = generate(gen.model, [p for p in prompts for _ in range(num_candidates - 1)],
                                   base.replace(do_sample=True, temperature=temperature, seed=seed + s,
                                                top_k=generation.get("top_k"), top_p=generation.get("top_p")))
                for i in range(len(chunk)):
                    per[i] += sampled[i * (num_candidates - 1):(i + 1) * (num_candidates - 1)]  # type: ignore[index]
        flat_prompts, flat_ids, owners, texts = [], [], [], []
        for i, (prompt, hyps) in enumerate(zip(prompts, per)):
            seen: set[str] = set()
            for ids in hyps:
                text = tok.decode([t for t in ids if t != eos], skip_special_tokens=True).strip()
                if text in seen:
                    continue
                seen.add(text)
                flat_prompts.append(prompt)
                flat_ids.append(list(ids) if ids else [eos])
                owners.append(i)
                texts.append(text)
        scores = sequence_logprobs(gen.model, flat_prompts, flat_ids)
        for i, src in enumerate(chunk):
            picked = [j for j, o in enumerate(owners) if o == i]
            out.append(Candidates(src, [texts[j] for j in picked], [scores[j] for j in picked]))
    return out


# ---------------------------------------------------------------------------------------
# The scorer and the fusion
# ---------------------------------------------------------------------------------------


def good_index(labels: Sequence[str] | None, num_labels: int) -> int:
    """Which of a 2-label scorer's labels means "good" (see :data:`GOOD_LABELS`)."""
    if num_labels != 2:
        raise ValueError(f"a rerank scorer is a classifier with 2 labels; this one has {num_labels}")
    names = [str(x).lower() for x in (labels or [])]
    for good in GOOD_LABELS:
        if good in names:
            return names.index(good)
    return 1


def scorer_logprobs(model: nn.Module, tokenizer: Any, pairs: Sequence[tuple[str, str]], *, good: int = 1,
                    max_len: int = 128, precision: str = "fp32", batch_size: int = 64) -> np.ndarray:
    """log P(good | source, candidate) of each pair (N,)."""
    from gptbert.tasks.classify import predict_proba

    probs = predict_proba(model, tokenizer, [(s, c, None) for s, c in pairs], max_len=max_len,
                          batch_size=batch_size, precision=precision)  # (N, 2)
    return np.log(np.clip(probs[:, good], 1e-12, 1.0)) if len(pairs) else np.zeros(0)


def fuse(logprob: np.ndarray, scorer: np.ndarray, weight: float) -> np.ndarray:
    """λ · length-normalised generator log-prob + (1 - λ) · scorer log P(good)."""
    return weight * np.asarray(logprob, dtype=np.float64) + (1.0 - weight) * np.asarray(scorer, dtype=np.float64)


def pick(cands: Sequence[Candidates], scorer: np.ndarray, weight: float) -> list[int]:
    """The index of the winning candidate of each source (``scorer``: the flat scores, in candidate order)."""
    out, at = [], 0
    for c in cands:
        n = len(c.texts)
        out.append(int(np.argmax(fuse(np.array(c.logprobs), scorer[at:at + n], weight))))
        at += n
    return out


def tune_weight(cands: Sequence[Candidates], scorer: np.ndarray, references: Sequence[str],
                weights: Sequence[float] = WEIGHTS) -> tuple[float, dict[str, float]]:
    """The λ of ``weights`` whose reranked outputs have the best corpus chrF against ``references``
    (ties: the larger λ, closer to the generator alone), and the chrF of every λ."""
    from gptbert.metrics import chrf

    table: dict[str, float] = {}
    best, best_score = 1.0, -1.0
    for w in sorted(weights, reverse=True):
        outs = [c.texts[i] for c, i in zip(cands, pick(cands, scorer, w))]
        table[f"{w:g}"] = score = chrf(outs, list(references))
        if score > best_score + 1e-9:
            best, best_score = w, score
    return best, dict(sorted(table.items(), key=lambda kv: float(kv[0])))


def rerank(gen: Generator, scorer: nn.Module, scorer_tokenizer: Any, sources: Sequence[str], *,
           num_candidates: int = DEFAULT_NUM_CANDIDATES, weight: float = DEFAULT_WEIGHT, good: int = 1,
           scorer_max_len: int = 128, precision: str = "fp32", method: str = "sample", temperature: float = 1.0,
           seed: int = 0, max_new_tokens: int | None = None, **generation: Any) -> list[dict[str, Any]]:
    """Per source: ``output`` (the winner), ``plain`` (the generator's own output) and every
    candidate with its ``logprob``, ``scorer`` and fused ``score``, best first."""
    cands = propose(gen, sources, num_candidates, method=method, temperature=temperature, seed=seed,
                    max_new_tokens=max_new_tokens, **generation)
    flat = scorer_logprobs(scorer, scorer_tokenizer, [(c.source, t) for c in cands for t in c.texts], good=good,
                           max_len=scorer_max_len, precision=precision)
    results, at = [], 0
    for c in cands:
        n = len(c.texts)
        fused = fuse(np.array(c.logprobs), flat[at:at + n], weight)
        order = np.argsort(-fused, kind="stable")
        results.append({"source": c.source, "output": c.texts[int(order[0])], "plain": c.texts[0],
                        "candidates": [{"text": c.texts[j], "logprob": float(c.logprobs[j]),
                                        "scorer": float(flat[at + j]), "score": float(fused[j])} for j in order]})
        at += n
    return results


def scorer_weight(run: Any) -> float:
    """The λ a scorer run keeps (a rerank run's tuned weight), else :data:`DEFAULT_WEIGHT`."""
    options = run.task.options
    return float(options.weight) if isinstance(options, RerankOptions) and options.weight is not None else DEFAULT_WEIGHT


def rerank_with_runs(generator_run: Any, scorer_run: Any, sources: Sequence[str], **opts: Any) -> list[dict[str, Any]]:
    """:func:`rerank` with a loaded generator run and scorer run (``opts``: ``num_candidates``,
    ``weight`` (default: the scorer's), ``method``, ``temperature``, ``seed``, ``max_new_tokens``,
    ``precision`` and sampling fields)."""
    gen = generator_run if isinstance(generator_run, Generator) else Generator.of_run(generator_run)
    if scorer_run.config.head != "classify":
        raise ValueError(f"{scorer_run.path}: a rerank scorer is a classifier (a 'rerank' or 2-label 'classify' "
                         f"run); this model has head {scorer_run.config.head!r}")
    good = good_index(scorer_run.labels, scorer_run.config.num_labels)
    options = scorer_run.task.options
    own = options if isinstance(options, RerankOptions) else RerankOptions()
    weight = opts.get("weight")
    picked = {k: opts[k] for k in ("temperature", "seed", "max_new_tokens", "method") if opts.get(k) is not None}
    picked.setdefault("method", own.method)
    return rerank(gen, scorer_run.model, run_tokenizer(scorer_run), sources,
                  num_candidates=int(opts.get("num_candidates") or own.num_candidates),
                  weight=float(weight) if weight is not None else scorer_weight(scorer_run), good=good,
                  scorer_max_len=run_max_len(scorer_run), precision=opts.get("precision", "fp32"),
                  **picked, **{k: v for k, v in generation_options(opts).items() if k in ("top_k", "top_p")})


# ---------------------------------------------------------------------------------------
# The task: training the scorer, tuning λ, evaluation and predictions
# ---------------------------------------------------------------------------------------


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def scorer_examples(pairs: Sequence[tuple[str, str]], cands: Sequence[Candidates]) -> list[tuple[str, str, int]]:
    """(source, text, label): each reference as a positive (1), each candidate that differs from
    it as a negative (0)."""
    out = []
    for (src, ref), c in zip(pairs, cands):
        out.append((src, ref, 1))
        out.extend((src, t, 0) for t in c.texts if not _same(t, ref))
    return out


@dataclass
class RerankData:
    """What the rerank task's dev evaluation reuses: the dev pairs and their candidates."""

    dev_pairs: list[tuple[str, str]]
    dev_candidates: list[Candidates]
    generator: Generator
    source: str


def generator_of(options: TaskOptions, device: str = "cpu") -> Generator:
    """The generator a rerank run (its options) proposes candidates with."""
    if not isinstance(options, RerankOptions) or not options.generator:
        raise ValueError("--task rerank needs --generator RUN: the generation run whose candidates the scorer "
                         "learns to rank")
    return load_generator(str(Path(options.generator).resolve()), device)


def _propose_with(gen: Generator, sources: Sequence[str], options: RerankOptions, **opts: Any) -> list[Candidates]:
    return propose(gen, sources, int(opts.get("num_candidates") or options.num_candidates),
                   method=opts.get("method") or options.method, temperature=options.temperature,
                   seed=options.seed, max_new_tokens=opts.get("max_new_tokens") or options.max_new_tokens)


def score_candidates(model: nn.Module, tokenizer: Any, pairs: Sequence[tuple[str, str]],
                     cands: Sequence[Candidates], *, weight: float | None, max_len: int,
                     precision: str = "fp32") -> dict[str, Any]:
    """Plain vs reranked outputs of ``cands`` against the references of ``pairs``: ROUGE, BLEU and
    chrF of both (``plain_*`` the generator's own output), the oracle chrF (the best candidate
    per sentence), and, with ``weight`` None, λ tuned on these pairs (``weight``, ``weights``: chrF per λ)."""
    from gptbert.metrics import chrf, generation_scores

    refs = [t for _, t in pairs]
    flat = scorer_logprobs(model, tokenizer, [(c.source, t) for c in cands for t in c.texts], max_len=max_len,
                           precision=precision)
    table = None
    if weight is None:
        weight, table = tune_weight(cands, flat, refs)
    outs = [c.texts[i] for c, i in zip(cands, pick(cands, flat, weight))]
    plain = [c.texts[0] for c in cands]
    oracle = [max(c.texts, key=lambda t, r=r: chrf([t], [r])) for c, r in zip(cands, refs)]  # type: ignore[misc]
    result: dict[str, Any] = dict(generation_scores(outs, refs))
    result.update({f"plain_{k}": v for k, v in generation_scores(plain, refs).items()})
    result.update({"oracle_chrf": chrf(oracle, refs), "weight": float(weight), "n": len(pairs),
                   "candidates_per_source": float(np.mean([len(c.texts) for c in cands]))})
    if table is not None:
        result["weights"] = table
    result["predictions"] = [{"source": s, "target": t, "prediction": o, "plain": p}
                             for (s, t), o, p in zip(pairs, outs, plain)]
    return result


class RerankTask(Task):
    """Train a scorer for generate-then-rerank (any family with a classify head); headline:
    the chrF of the reranked dev outputs at the tuned λ."""

    name = "rerank"
    options_type = RerankOptions
    metric = "chrf"
    heads = ()

    def head(self, family: str) -> str:
        return "classify"

    def capabilities(self, config: Any, *, tuned: bool) -> set[str]:
        return {"generate"} if tuned and config.head == "classify" else set()

    def num_labels(self, data: TaskSplits) -> int:
        return 2

    def load_data(self, train_path: str | Path, dev_path: str | Path | None, options: TaskOptions, *,
                  seed: int = 0, max_train: int | None = None, skip_bad_rows: bool = False) -> TaskSplits:
        """The pairs of a generation file, the generator's candidates for every source (training
        negatives; for at most :data:`MAX_DEV_SOURCES` dev sources, the pool λ is tuned on)."""
        from dataclasses import replace

        from gptbert.tasks.generate import load_data as load_pairs

        assert isinstance(options, RerankOptions)
        gen = generator_of(options)
        options = replace(options, generator=gen.path)
        data = load_pairs(train_path, dev_path, skip_bad_rows=skip_bad_rows, seed=seed, max_train=max_train)
        if data.format != "pairs":
            raise ValueError(f"{train_path}: --task rerank reads source/target pairs, not dialogues")
        train_pairs, dev_pairs = list(data.train.items), list(data.dev.items)[:MAX_DEV_SOURCES]
        train_cands = _propose_with(gen, [s for s, _ in train_pairs], options)
        dev_cands = _propose_with(gen, [s for s, _ in dev_pairs], options)
        train = scorer_examples(train_pairs, train_cands)
        dev = scorer_examples(dev_pairs, dev_cands)
        texts = [s for s, _ in train_pairs] + [t for _, t, _ in train]
        return TaskSplits(train, dev, texts, options, list(RERANK_LABELS),
                          RerankData(dev_pairs, dev_cands, gen, str(train_path)))

    def collator(self, tokenizer: Any, config: Any, max_len: int, options: TaskOptions) -> Any:
        from gptbert.tasks.classify import make_collator

        return make_collator(tokenizer, config, max_len)

    def fitting(self, model: nn.Module, tokenizer: Any, data: TaskSplits, *, max_len: int,
                precision: str = "fp32", seed: int = 0) -> Fitting:
        """The scorer early-stops on its dev loss over the dev (source, text) pairs; the final
        evaluation (once, after training) tunes λ and writes it into the options the run keeps."""
        options, detail = data.options, data.detail
        assert isinstance(options, RerankOptions) and isinstance(detail, RerankData)

        def evaluate(m: nn.Module) -> dict[str, Any]:
            from gptbert.tasks.classify import evaluate as classify_scores

            result = score_candidates(m, tokenizer, detail.dev_pairs, detail.dev_candidates, weight=None,
                                      max_len=max_len, precision=precision)
            options.weight = result["weight"]
            pairwise = classify_scores(m, tokenizer, data.dev, max_len=max_len, precision=precision, num_labels=2)
            result.update(scorer_accuracy=pairwise["accuracy"], scorer_macro_f1=pairwise["macro_f1"])
            return result

        return Fitting(ListDataset(data.train), self.collator(tokenizer, model.config, max_len, options),
                       evaluate, "loss", options, list(RERANK_LABELS), dev_data=ListDataset(data.dev))

    def run_metrics(self, final: dict[str, Any]) -> dict[str, Any]:
        return {"dev": scalars(final), "weights": final.get("weights"), "samples": final["predictions"][:5]}

    def evaluate(self, model: nn.Module, tokenizer: Any, examples: Sequence[Any], options: TaskOptions, *,
                 labels: Sequence[str] | None = None, max_len: int = 128, precision: str = "fp32",
                 **opts: Any) -> dict[str, Any]:
        """Generate candidates for (source, reference) ``examples`` with the run's generator and
        score plain and reranked outputs at the run's λ (``opts``: ``num_candidates``, ``weight``)."""
        assert isinstance(options, RerankOptions)
        if not examples:
            raise ValueError("no examples to evaluate")
        pairs = [(s, t) for s, t in examples]
        cands = _propose_with(generator_of(options, str(model_device(model))), [s for s, _ in pairs], options, **opts)
        weight = opts.get("weight", options.weight if options.weight is not None else DEFAULT_WEIGHT)
        return score_candidates(model, tokenizer, pairs, cands, weight=weight, max_len=max_len, precision=precision)

    def read_examples(self, path: str | Path, options: TaskOptions, *, labels: Sequence[str] | None = None,
                      skip_bad_rows: bool = False) -> list[Any]:
        from gptbert.tasks.generate import read_examples

        return read_examples(path, skip_bad_rows=skip_bad_rows)[0]

    def bootstrap_pairs(self, result: dict[str, Any], data: TaskSplits) -> tuple[list[Any], list[Any]] | None:
        preds = result.get("predictions")
        return ([p["target"] for p in preds], [p["prediction"] for p in preds]) if preds else None

    def predict(self, run: Any, inputs: list[Any], **opts: Any) -> list[dict[str, Any]]:
        """Sources -> the reranked ``output``, the generator's ``plain`` output and the scored candidates."""
        options = self.options_of(run)
        assert isinstance(options, RerankOptions)
        sources = [text_of(x, "source", "text", "document", "prompt") for x in inputs]
        opts = {k: v for k, v in opts.items() if v is not None}
        opts.setdefault("temperature", options.temperature)
        return rerank_with_runs(generator_of(options, str(model_device(run.model))), run, sources, **opts)

    def read_inputs(self, path: Path) -> list[Any]:
        if path.suffix.lower() in (".tsv", ".csv"):
            from gptbert.data.readers import read_pairs_file

            return list(read_pairs_file(path).sources)
        return super().read_inputs(path)
