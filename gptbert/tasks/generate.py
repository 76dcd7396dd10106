"""Conditional generation with GPT (or a GPT-BERT hybrid in causal mode): summarization, translation, dialogue.

A decoder-only model learns ``source + separator -> target`` as a conditional language
model, with the loss on the target (and its end-of-text) only
(:class:`ConditionalLMCollator`); prediction continues
``source + separator`` greedily (or with beams / sampling) until end-of-text. The
separator is :data:`PAIR_SEPARATOR` and is stored in the run's ``task.json`` so that
prediction builds exactly the training prompts.

Data: TSV/CSV/JSONL with ``source``/``target`` columns
(:func:`gptbert.data.readers.read_pairs_file`), or JSONL dialogues
(``{"turns": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}``, or
``"messages"``, or ``[[role, text], ...]``): every assistant turn becomes one example
whose source is the conversation so far, formatted by :func:`format_chat`.

Scores (:func:`gptbert.metrics.generation_scores`): ROUGE-1/2/L F (rouge-score, stemmed),
corpus BLEU and chrF (sacrebleu), in percent.

Dialogue format (:func:`format_chat`)::

    User: hello there
    Bot: hi! how can I help?
    User: what's the time?
    Bot:

Turns are joined by :data:`TURN_SEPARATOR` (a newline; newlines inside a turn become
spaces); a reply ends at end-of-text or at the next newline.

:func:`gptbert.tasks.generate_data.make_pairs` builds small source/target sets from the shared
corpora (documented there) for demos and the README's generation figure. BERT does this
task extractively (:mod:`gptbert.tasks.extractive`); :class:`GenerateTask` picks the way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn

from gptbert.data.objectives import IGNORE_INDEX, TokenizerLike, eos_or_sep, pad_sequences
from gptbert.data.readers import DataError, PairData, detect_format, read_pairs_file, train_dev_split
from gptbert.data.readers.registry import split_path
from gptbert.metrics import generation_scores
from gptbert.precision import autocast
from gptbert.tasks.extractive import scorer_examples, summarize, summary_length
from gptbert.tasks.extractive import evaluate as evaluate_extractive
from gptbert.tasks.base import Fitting, Task, TaskOptions, TaskSplits
from gptbert.tasks.common import (
    ListDataset,
    generation_options,
    is_causal_lm,
    model_device,
    plain_ids,
    run_max_len,
    run_tokenizer,
    scalars,
    text_of,
)
from gptbert.tokenizer import Tokenizer

PAIR_SEPARATOR = "\n=>"
"""Between a source and its target: ``source + PAIR_SEPARATOR + target + eos``."""
TURN_SEPARATOR = "\n"
"""Between two dialogue turns."""
ROLE_PREFIXES = {"user": "User:", "assistant": "Bot:", "system": "System:"}
CHAT_SEPARATOR = " "
"""Between a dialogue prompt (ending in 'Bot:') and the reply."""
DEFAULT_MAX_NEW_TOKENS = 64
MAX_GENERATION_EVAL = 256
"""At most this many dev examples are generated for the final scores of a generation run."""


@dataclass
class GenerateOptions(TaskOptions):
    """How a generation run builds its prompts (GPT) or picks its sentences (BERT). None: not set
    (a bare GPT checkpoint continues its prompt; the defaults below apply)."""

    format: str | None = None
    """'pairs' (source/target) or 'chat' (dialogues)."""
    method: str | None = None
    """'conditional-lm' (GPT) or 'extractive' (BERT's sentence scorer)."""
    separator: str | None = None
    """Between a source and its target (default: :func:`separator_for` the format)."""
    max_new_tokens: int | None = None
    k: int | None = None
    """Sentences an extractive summary picks."""
    n_train_sentences: int | None = None
    positive_fraction: float | None = None


# ---------------------------------------------------------------------------------------
# Dialogue formatting
# ---------------------------------------------------------------------------------------


def _turns(turns: Sequence[Any]) -> list[tuple[str, str]]:
    """(role, content) pairs from tuples or ``{"role", "content"}`` dicts; roles checked."""
    out = []
    for i, t in enumerate(turns):
        if isinstance(t, Mapping):
            if "role" not in t or "content" not in t:
                raise ValueError(f"turn {i}: expected keys 'role' and 'content', got {sorted(t)}")
            role, content = t["role"], t["content"]
        elif isinstance(t, (tuple, list)) and len(t) == 2:
            role, content = t
        else:
            raise ValueError(f"turn {i}: expected (role, content) or {{'role', 'content'}}, got {t!r}")
        role = str(role).lower()
        role = {"bot": "assistant", "human": "user", "model": "assistant"}.get(role, role)
        if role not in ROLE_PREFIXES:
            raise ValueError(f"turn {i}: unknown role {role!r}; expected one of {', '.join(ROLE_PREFIXES)}")
        if not isinstance(content, str):
            raise ValueError(f"turn {i}: content must be a string, got {type(content).__name__}")
        out.append((role, content))
    return out


def _clean_turn(content: str, tokenizer: Tokenizer | None) -> str:
    text = " ".join(content.split())
    if tokenizer is not None:  # a user cannot type the model's control tokens
        for tok in tokenizer.special_tokens.values():
            if tok:
                text = text.replace(tok, " ")
        text = " ".join(text.split())
    return text


def format_chat(turns: Sequence[tuple[str, str]] | Sequence[Mapping[str, str]], tokenizer: Tokenizer | None = None,
                *, add_generation_prompt: bool = True, max_tokens: int | None = None) -> str:
    """The dialogue as one prompt: ``"User: ...\\nBot: ...\\n...\\nBot:"``.

    ``turns``: (role, content) pairs or ``{"role", "content"}`` dicts, roles 'user',
    'assistant' (alias 'bot') or 'system'. Special-token strings of ``tokenizer`` are
    removed from the contents. With ``add_generation_prompt`` the text ends with the
    assistant's prefix, ready for the reply. With ``max_tokens`` (needs ``tokenizer``) the
    oldest turns are dropped until the prompt fits (a system turn is kept).
    """
    items = [(r, _clean_turn(c, tokenizer)) for r, c in _turns(turns)]

    def render(seq: list[tuple[str, str]]) -> str:
        lines = [f"{ROLE_PREFIXES[r]} {c}".rstrip() for r, c in seq]
        if add_generation_prompt:
            lines.append(ROLE_PREFIXES["assistant"])
        return TURN_SEPARATOR.join(lines)

    text = render(items)
    if max_tokens is not None:
        if tokenizer is None:
            raise ValueError("format_chat(max_tokens=...) needs the tokenizer")
        system = [t for t in items[:1] if t[0] == "system"]
        rest = items[len(system):]
        while len(rest) > 1 and len(tokenizer.encode(text, add_special_tokens=False).ids) > max_tokens:
            rest = rest[1:]
            text = render(system + rest)
    return text


def dialogue_examples(turns: Sequence[Any], tokenizer: Tokenizer | None = None) -> list[tuple[str, str]]:
    """(prompt, reply) for every assistant turn of one dialogue."""
    items = _turns(turns)
    out = []
    for i, (role, content) in enumerate(items):
        if role == "assistant" and i > 0:
            out.append((format_chat(items[:i], tokenizer), _clean_turn(content, tokenizer)))
    return out


# ---------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------


def _unpack_conditional(example: Any) -> tuple[str | Sequence[int], str | Sequence[int] | None]:
    if isinstance(example, Mapping):
        for p_key, t_key in (("prompt", "target"), ("source", "target"), ("input", "output"),
                             ("document", "summary"), ("question", "answer")):
            if p_key in example:
                return example[p_key], example.get(t_key)
        raise KeyError(f"conditional example needs a prompt/source/input key, got {sorted(example)}")
    if isinstance(example, str):
        return example, None
    return example[0], (example[1] if len(example) > 1 else None)


class ConditionalLMCollator:
    """Prompt -> target for decoder-only models (summaries, translation, generative QA, dialogue).

    Each example is ``(prompt, target)`` (strings or id lists) or a dict (``prompt``/
    ``target``, ``source``/``target``, ``input``/``output``, ...). The sequence is
    ``prompt + separator + target + eos``; the prompt loses tokens from its *start* until
    the sequence fits ``max_len + 1`` tokens (if the target alone is too long it is cut at
    its end and loses its eos). ``idx = seq[:-1]``, ``targets = seq[1:]`` with -100 on
    every position that predicts a prompt or separator token, so the loss covers the
    target and its eos only.

    ``separator``: a string, ids, or None = [SEP] if the vocabulary has one, else the ids of
    ``"\\n"``. Examples without a target (or ``generation=True``) give generation batches:
    ``idx = prompt + separator``, left-padded, no ``targets``.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, separator: str | Sequence[int] | None = None,
                 padding_side: Literal["right", "left"] = "right", pad_to_multiple_of: int | None = None,
                 add_eos: bool = True, generation: bool = False) -> None:
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of
        self.add_eos = add_eos
        self.generation = generation
        self.eos_id = eos_or_sep(tokenizer)
        if separator is None:
            if tokenizer.sep_id is not None:
                sep = [int(tokenizer.sep_id)]
            else:
                sep = list(tokenizer.encode("\n", add_special_tokens=False).ids) or [self.eos_id]
        elif isinstance(separator, str):
            sep = list(tokenizer.encode(separator, add_special_tokens=False).ids)
        else:
            sep = [int(i) for i in separator]
        self.separator = sep

    def _ids(self, x: str | Sequence[int]) -> list[int]:
        if isinstance(x, str):
            return list(self.tokenizer.encode(x, add_special_tokens=False).ids)
        return [int(i) for i in x]

    def build(self, prompt: str | Sequence[int], target: str | Sequence[int]) -> tuple[list[int], list[int]]:
        """``(idx, targets)`` of one example (unpadded)."""
        p, t = self._ids(prompt), self._ids(target)
        tail = t + ([self.eos_id] if self.add_eos else [])
        budget = self.max_len + 1
        keep = budget - len(self.separator) - len(tail)
        if keep < 0:  # the target alone does not fit: no prompt, cut the target's end
            p = []
            tail = t[: max(0, budget - len(self.separator))]
        elif len(p) > keep:
            p = p[len(p) - keep:]
        seq = p + self.separator + tail
        first_target = len(p) + len(self.separator)  # index in seq of the first target token
        idx = seq[:-1]
        targets = [tok if j + 1 >= first_target else IGNORE_INDEX for j, tok in enumerate(seq[1:])]
        return idx, targets

    def prompt_ids(self, prompt: str | Sequence[int]) -> list[int]:
        """``prompt + separator`` cut from the left to ``max_len`` tokens (for generation)."""
        ids = self._ids(prompt) + self.separator
        return ids[-self.max_len:]

    def __call__(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        pairs = [_unpack_conditional(e) for e in examples]
        pad_id = self.tokenizer.pad_id
        if self.generation or any(t is None for _, t in pairs):
            ids = [self.prompt_ids(p) for p, _ in pairs]
            idx = pad_sequences(ids, pad_id, padding_side="left", pad_to_multiple_of=self.pad_to_multiple_of)
            T = idx.shape[1]
            return {"idx": idx, "attention_mask": pad_sequences([[1] * len(s) for s in ids], 0, length=T,
                                                                padding_side="left")}
        rows = [self.build(p, t) for p, t in pairs]  # type: ignore[arg-type]
        kw: dict[str, Any] = dict(padding_side=self.padding_side, pad_to_multiple_of=self.pad_to_multiple_of)
        idx = pad_sequences([r[0] for r in rows], pad_id, **kw)  # (B, T)
        T = idx.shape[1]
        return {"idx": idx,
                "targets": pad_sequences([r[1] for r in rows], IGNORE_INDEX, length=T, **kw),  # (B, T)
                "attention_mask": pad_sequences([[1] * len(r[0]) for r in rows], 0, length=T, **kw)}  # (B, T)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


@dataclass
class GenerationData:
    train: ListDataset
    """(source, target) pairs."""
    dev: ListDataset
    format: str
    """'pairs' or 'chat'."""
    source: str


def _read_dialogues(path: Path) -> list[tuple[str, str]] | None:
    """(prompt, reply) pairs if ``path`` is a JSONL file of dialogues, else None."""
    if detect_format(path) != "jsonl":
        return None
    out: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            turns = obj.get("turns", obj.get("messages")) if isinstance(obj, dict) else None
            if turns is None:
                if lineno == 1 or not out:
                    return None  # not a dialogue file: read as source/target pairs
                raise DataError(f"{path}:{lineno}: expected 'turns' or 'messages' like the lines before")
            try:
                out.extend(dialogue_examples(turns))
            except ValueError as e:
                raise DataError(f"{path}:{lineno}: {e}") from None
    if not out:
        raise DataError(f"{path}: no assistant turn with a preceding turn: nothing to learn")
    return out


def read_examples(path: str | Path, *, skip_bad_rows: bool = False) -> tuple[list[tuple[str, str]], str]:
    """(source, target) pairs and the format ('pairs' or 'chat') of a pairs or dialogue file."""
    p = Path(path)
    if not split_path(p)[0].exists():
        from gptbert.io.files import missing_file_message

        raise FileNotFoundError(missing_file_message(p))
    chat = _read_dialogues(p)
    if chat is not None:
        return chat, "chat"
    data: PairData = read_pairs_file(p, skip_bad_rows=skip_bad_rows)
    return list(zip(data.sources, data.targets)), "pairs"


def load_data(train_path: str | Path, dev_path: str | Path | None = None, *, skip_bad_rows: bool = False,
              dev_fraction: float = 0.1, seed: int = 0, max_train: int | None = None) -> GenerationData:
    train, fmt = read_examples(train_path, skip_bad_rows=skip_bad_rows)
    if dev_path:
        dev, dev_fmt = read_examples(dev_path, skip_bad_rows=skip_bad_rows)
        if dev_fmt != fmt:
            raise DataError(f"{dev_path}: a {dev_fmt} file, but {train_path} is a {fmt} file")
    else:
        train, dev = train_dev_split(train, dev_fraction=dev_fraction, seed=seed)
    if max_train is not None and len(train) > max_train:
        rng = np.random.default_rng(seed)
        train = [train[i] for i in sorted(rng.choice(len(train), size=max_train, replace=False).tolist())]
    return GenerationData(ListDataset(train), ListDataset(dev), fmt, str(train_path))


def separator_for(fmt: str) -> str:
    return CHAT_SEPARATOR if fmt == "chat" else PAIR_SEPARATOR


def make_collator(tokenizer: Tokenizer, max_len: int, *, separator: str = PAIR_SEPARATOR) -> ConditionalLMCollator:
    return ConditionalLMCollator(tokenizer, max_len, separator=separator)


def training_examples(pairs: Sequence[tuple[str, str]], tokenizer: Tokenizer, max_len: int, *,
                      separator: str = PAIR_SEPARATOR, keep_start: bool = True) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) that fit ``max_len``.

    The collator alone would drop a long source's *beginning*; for documents (``keep_start``)
    the beginning matters most, so the source keeps its first tokens instead. Dialogue
    prompts (``keep_start=False``) keep their end: the latest turns.
    """
    n_sep = len(plain_ids(tokenizer, separator))
    out = []
    for src, tgt in pairs:
        t = plain_ids(tokenizer, tgt)
        p = plain_ids(tokenizer, src)
        budget = max_len + 1 - n_sep - len(t) - 1
        if keep_start and len(p) > budget:
            p = p[:max(0, budget)]
        out.append((p, t))
    return out


def prompt_ids(tokenizer: Tokenizer, source: str, room: int, *, separator: str = PAIR_SEPARATOR,
               keep_start: bool = True) -> list[int]:
    """``source + separator`` in at most ``room`` tokens (the source cut at its end, or at its
    start when ``keep_start`` is False)."""
    sep = plain_ids(tokenizer, separator)
    p = plain_ids(tokenizer, source)
    budget = max(0, room - len(sep))
    p = p[:budget] if keep_start else p[len(p) - budget:] if budget else []
    return p + sep


# ---------------------------------------------------------------------------------------
# Prediction and scores
# ---------------------------------------------------------------------------------------


def _check_lm(model: nn.Module) -> None:
    config = model.config  # type: ignore[union-attr]
    if not is_causal_lm(config):
        raise ValueError(f"conditional generation needs a GPT model (or a hybrid) with an 'lm' head; this is a {config.family} "
                         f"model with head {config.head!r} (BERT summarizes extractively: gptbert.tasks.extractive)")


def predict(
    model: nn.Module, tokenizer: Tokenizer, sources: Sequence[str], *, separator: str = PAIR_SEPARATOR,
    max_len: int | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, batch_size: int = 16,
    precision: str = "fp32", stop_at_newline: bool = False, **generation: Any,
) -> list[str]:
    """The generated target of each source (``generation``: GenerationConfig fields, e.g. num_beams)."""
    from gptbert.generate import GenerationConfig, generate

    _check_lm(model)
    if isinstance(sources, str):
        raise TypeError("predict() expects a list of sources, got a single str")
    block = model.config.block_size  # type: ignore[union-attr]
    max_len = min(max_len or block, block)
    max_new = min(max_new_tokens, block - 1)
    room = max(1, max_len - max_new)
    keep_start = separator != CHAT_SEPARATOR
    eos = tokenizer.eos_id if tokenizer.eos_id is not None else tokenizer.sep_id
    cfg = GenerationConfig(max_new_tokens=max_new, eos_token_id=eos, pad_token_id=tokenizer.pad_id,
                           stop_strings=["\n"] if stop_at_newline else None, **generation)
    device = model_device(model)
    out: list[str] = []
    for s in range(0, len(sources), batch_size):
        prompts = [prompt_ids(tokenizer, src, room, separator=separator, keep_start=keep_start)
                   for src in sources[s:s + batch_size]]
        with autocast(precision, device):
            new_ids = generate(model, prompts, cfg, tokenizer=tokenizer)
        assert isinstance(new_ids, list)
        for ids in new_ids:
            text = tokenizer.decode([i for i in ids if i != eos], skip_special_tokens=True)
            if stop_at_newline:
                text = text.split("\n")[0]
            out.append(text.strip())
    return out


def evaluate(model: nn.Module, tokenizer: Tokenizer, examples: Sequence[tuple[str, str]], *,
             separator: str = PAIR_SEPARATOR, max_len: int | None = None,
             max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, batch_size: int = 16, precision: str = "fp32",
             stop_at_newline: bool = False, **generation: Any) -> dict[str, Any]:
    """Generate for every source and score against the targets (plus a few samples)."""
    if not examples:
        raise ValueError("no examples to evaluate")
    preds = predict(model, tokenizer, [s for s, _ in examples], separator=separator, max_len=max_len,
                    max_new_tokens=max_new_tokens, batch_size=batch_size, precision=precision,
                    stop_at_newline=stop_at_newline, **generation)
    refs = [t for _, t in examples]
    out: dict[str, Any] = dict(generation_scores(preds, refs))
    out["n"] = len(examples)
    out["predictions"] = [{"source": s, "target": t, "prediction": p} for (s, t), p in zip(examples, preds)]
    return out


# ---------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------


class GenerateTask(Task):
    """Source -> target: GPT learns a conditional LM (pairs or dialogues), BERT an extractive
    summarizer (a 2-label sentence scorer on oracle labels); ELMo cannot do it. Headline ROUGE-L."""

    name = "generate"
    options_type = GenerateOptions
    metric = "rougeL"
    input_column = "source"

    def head(self, family: str) -> str:
        if family == "elmo":
            raise ValueError("--task generate: ELMo has no generation or summarization path; use a GPT model "
                             "(conditional LM) or a BERT model (extractive summaries)")
        return "lm" if family in ("gpt", "hybrid") else "classify"

    def capabilities(self, config: Any, *, tuned: bool) -> set[str]:
        return {"generate"} if is_causal_lm(config) else set()

    def serves(self, run: Any) -> bool:
        """A fine-tuned generation run (a bare GPT checkpoint just continues its prompt)."""
        return self.options_of(run).method is not None or not is_causal_lm(run.config)  # type: ignore[attr-defined]

    def load_data(self, train_path: str | Path, dev_path: str | Path | None, options: TaskOptions, *,
                  seed: int = 0, max_train: int | None = None, skip_bad_rows: bool = False) -> TaskSplits:
        data = load_data(train_path, dev_path, skip_bad_rows=skip_bad_rows, seed=seed, max_train=max_train)
        texts = [s for s, _ in data.train.items] + [t for _, t in data.train.items]
        return TaskSplits(data.train.items, data.dev.items, texts, replace(options, format=data.format), None, data)

    def collator(self, tokenizer: Tokenizer, config: Any, max_len: int, options: TaskOptions) -> Any:
        from gptbert.tasks.classify import make_collator as classify_collator

        assert isinstance(options, GenerateOptions)
        if is_causal_lm(config):
            return make_collator(tokenizer, max_len, separator=options.separator or separator_for(options.format or ""))
        return classify_collator(tokenizer, config, max_len)

    def fitting(self, model: nn.Module, tokenizer: Tokenizer, data: TaskSplits, *, max_len: int,
                precision: str = "fp32", seed: int = 0) -> Fitting:
        """GPT: (prompt ids, target ids) early-stopped on dev loss; BERT: (sentence, document,
        oracle label) early-stopped on dev ROUGE-L. Both score at most :data:`MAX_GENERATION_EVAL` dev pairs."""
        options = data.options
        assert isinstance(options, GenerateOptions)
        dev = list(data.dev)[:MAX_GENERATION_EVAL]
        if is_causal_lm(model.config):  # type: ignore[union-attr]
            sep = separator_for(options.format or "")
            keep_start = options.format == "pairs"
            train = training_examples(data.train, tokenizer, max_len, separator=sep, keep_start=keep_start)
            dev_items = training_examples(data.dev, tokenizer, max_len, separator=sep, keep_start=keep_start)
            longest = max(len(t) for _, t in train)
            options = replace(options, method="conditional-lm", separator=sep,
                              max_new_tokens=int(min(max_len // 2, max(8, longest + 4))))
            return Fitting(ListDataset(train), self.collator(tokenizer, model.config, max_len, options),  # type: ignore[arg-type]
                           lambda m: self.evaluate(m, tokenizer, dev, options, max_len=max_len, precision=precision),
                           "loss", options, dev_data=ListDataset(dev_items))
        source = data.detail.source if data.detail is not None else "the training file"
        if options.format != "pairs":
            raise ValueError(f"{source}: dialogue data needs a GPT model; BERT summarizes source/target pairs")
        k = summary_length(data.train)
        items = scorer_examples(data.train, k)
        if not any(y for _, _, y in items):
            raise ValueError(f"{source}: no source sentence shares a word with its target: no oracle labels")
        options = replace(options, method="extractive", k=k, n_train_sentences=len(items),
                          positive_fraction=float(np.mean([y for _, _, y in items])))
        return Fitting(ListDataset(items), self.collator(tokenizer, model.config, max_len, options),  # type: ignore[arg-type]
                       lambda m: self.evaluate(m, tokenizer, dev, options, max_len=max_len, precision=precision,
                                               method="scorer"),
                       self.metric, options, labels=["other", "summary"])

    def run_metrics(self, final: dict[str, Any]) -> dict[str, Any]:
        return {"dev": scalars(final), "samples": final["predictions"][:5]}

    def evaluate(self, model: nn.Module, tokenizer: Tokenizer, examples: Sequence[Any], options: TaskOptions, *,
                 labels: Sequence[str] | None = None, max_len: int | None = None, precision: str = "fp32",
                 **opts: Any) -> dict[str, Any]:
        """ROUGE-1/2/L, BLEU, chrF. ``opts``: ``format`` (of the examples' file), ``batch_size``,
        ``max_new_tokens`` and GenerationConfig fields (GPT), ``k`` and ``method`` (BERT)."""
        assert isinstance(options, GenerateOptions)
        if options.method == "extractive" or not is_causal_lm(model.config):  # type: ignore[union-attr]
            return evaluate_extractive(model, tokenizer, examples, k=int(opts.get("k") or options.k or 1),
                                       method=opts.get("method", "auto"), max_len=max_len, precision=precision)
        fmt = opts.get("format") or options.format or "pairs"
        return evaluate(model, tokenizer, examples, separator=options.separator or separator_for(fmt), max_len=max_len,
                        max_new_tokens=int(opts.get("max_new_tokens") or options.max_new_tokens
                                           or DEFAULT_MAX_NEW_TOKENS),
                        batch_size=int(opts.get("batch_size", 16)), precision=precision,
                        stop_at_newline=fmt == "chat", **generation_options(opts))

    def read_examples(self, path: str | Path, options: TaskOptions, *, labels: Sequence[str] | None = None,
                      skip_bad_rows: bool = False) -> list[Any]:
        return read_examples(path, skip_bad_rows=skip_bad_rows)[0]

    def evaluate_file(self, run: Any, path: Path, **opts: Any) -> dict[str, Any]:
        pairs, fmt = read_examples(path, skip_bad_rows=bool(opts.pop("skip_bad_rows", False)))
        pairs = pairs[:opts.pop("max_examples", None)]
        return self.evaluate(run.model, run_tokenizer(run), pairs, self.options_of(run), max_len=run_max_len(run),
                             **{"format": fmt, **opts})

    def bootstrap_pairs(self, result: dict[str, Any], data: TaskSplits) -> tuple[list[Any], list[Any]] | None:
        preds = result.get("predictions")
        return ([p["target"] for p in preds], [p["prediction"] for p in preds]) if preds else None

    def predict(self, run: Any, inputs: list[Any], **opts: Any) -> list[dict[str, Any]]:
        """Sources (or, for a dialogue run, a user message) -> output (GPT) or summary (BERT)."""
        options = self.options_of(run)
        assert isinstance(options, GenerateOptions)
        tok, max_len, precision = run_tokenizer(run), run_max_len(run), opts.get("precision", "fp32")
        sources = [text_of(x, "source", "text", "document", "prompt") for x in inputs]
        if options.method == "extractive" or not is_causal_lm(run.config):
            res = summarize(run.model, tok, sources, k=int(opts.get("k") or options.k or 1),
                                       max_len=max_len, precision=precision)
            return [{"source": s, "summary": r["summary"], "sentences": r["sentences"]} for s, r in zip(sources, res)]
        chat = options.format == "chat"
        prompts = [format_chat([("user", s)], tok) for s in sources] if chat else sources
        outs = predict(run.model, tok, prompts, separator=options.separator or PAIR_SEPARATOR, max_len=max_len,
                       precision=precision, stop_at_newline=chat,
                       max_new_tokens=int(opts.get("max_new_tokens") or options.max_new_tokens or DEFAULT_MAX_NEW_TOKENS),
                       **generation_options(opts))
        return [{"source": s, "output": o} for s, o in zip(sources, outs)]


