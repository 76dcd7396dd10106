"""Conditional generation with GPT: summarization, translation, dialogue.

A decoder-only model learns ``source + separator -> target`` as a conditional language
model, with the loss on the target (and its end-of-text) only
(:class:`gptbert.data.collate.ConditionalLMCollator`); prediction continues
``source + separator`` greedily (or with beams / sampling) until end-of-text. The
separator is :data:`PAIR_SEPARATOR` and is stored in the run's ``task.json`` so that
prediction builds exactly the training prompts.

Data: TSV/CSV/JSONL with ``source``/``target`` columns
(:func:`gptbert.data.readers.read_pairs_file`), or JSONL dialogues
(``{"turns": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}``, or
``"messages"``, or ``[[role, text], ...]``): every assistant turn becomes one example
whose source is the conversation so far, formatted by :func:`format_chat`.

Scores: ROUGE-1/2/L F (rouge-score, stemmed), corpus BLEU and chrF (sacrebleu), in percent.

Dialogue format (:func:`format_chat`)::

    User: hello there
    Bot: hi! how can I help?
    User: what's the time?
    Bot:

Turns are joined by :data:`TURN_SEPARATOR` (a newline; newlines inside a turn become
spaces); a reply ends at end-of-text or at the next newline.

:func:`make_pairs` builds small source/target sets from the shared corpora (documented
there) for demos and the README's generation figure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn as nn

from gptbert.data.collate import ConditionalLMCollator
from gptbert.data.readers import DataError, PairData, detect_format, read_pairs_file, train_dev_split
from gptbert.tasks import ListDataset, autocast, model_device
from gptbert.tokenizer import Tokenizer

PAIR_SEPARATOR = "\n=>"
"""Between a source and its target: ``source + PAIR_SEPARATOR + target + eos``."""
TURN_SEPARATOR = "\n"
"""Between two dialogue turns."""
ROLE_PREFIXES = {"user": "User:", "assistant": "Bot:", "system": "System:"}
CHAT_SEPARATOR = " "
"""Between a dialogue prompt (ending in 'Bot:') and the reply."""
DEFAULT_MAX_NEW_TOKENS = 64


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
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
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


def _ids(tokenizer: Tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def training_examples(pairs: Sequence[tuple[str, str]], tokenizer: Tokenizer, max_len: int, *,
                      separator: str = PAIR_SEPARATOR, keep_start: bool = True) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) that fit ``max_len``.

    The collator alone would drop a long source's *beginning*; for documents (``keep_start``)
    the beginning matters most, so the source keeps its first tokens instead. Dialogue
    prompts (``keep_start=False``) keep their end: the latest turns.
    """
    n_sep = len(_ids(tokenizer, separator))
    out = []
    for src, tgt in pairs:
        t = _ids(tokenizer, tgt)
        p = _ids(tokenizer, src)
        budget = max_len + 1 - n_sep - len(t) - 1
        if keep_start and len(p) > budget:
            p = p[:max(0, budget)]
        out.append((p, t))
    return out


def prompt_ids(tokenizer: Tokenizer, source: str, room: int, *, separator: str = PAIR_SEPARATOR,
               keep_start: bool = True) -> list[int]:
    """``source + separator`` in at most ``room`` tokens (the source cut at its end, or at its
    start when ``keep_start`` is False)."""
    sep = _ids(tokenizer, separator)
    p = _ids(tokenizer, source)
    budget = max(0, room - len(sep))
    p = p[:budget] if keep_start else p[len(p) - budget:] if budget else []
    return p + sep


# ---------------------------------------------------------------------------------------
# Prediction and scores
# ---------------------------------------------------------------------------------------


def _check_lm(model: nn.Module) -> None:
    config = model.config  # type: ignore[union-attr]
    if config.family != "gpt" or config.head != "lm":
        raise ValueError(f"conditional generation needs a GPT model with an 'lm' head; this is a {config.family} "
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


def scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L, BLEU and chrF in percent."""
    from gptbert.metrics import bleu, chrf, rouge

    r = rouge(predictions, references)
    return {"rouge1": r["rouge1"], "rouge2": r["rouge2"], "rougeL": r["rougeL"],
            "bleu": bleu(predictions, references), "chrf": chrf(predictions, references)}


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
    out: dict[str, Any] = dict(scores(preds, refs))
    out["n"] = len(examples)
    out["predictions"] = [{"source": s, "target": t, "prediction": p} for (s, t), p in zip(examples, preds)]
    return out


# ---------------------------------------------------------------------------------------
# Source/target pairs built from the shared corpora
# ---------------------------------------------------------------------------------------


def shakespeare_speeches(path: str | Path) -> list[tuple[str, list[str]]]:
    """(speaker, lines) of each speech of a TinyShakespeare-style play text (``NAME:`` line,
    then the speech, then a blank line)."""
    speeches: list[tuple[str, list[str]]] = []
    block: list[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip():
            block.append(line.rstrip())
            continue
        if len(block) >= 2 and block[0].endswith(":") and block[0][:-1].strip():
            speeches.append((block[0][:-1].strip(), [b.strip() for b in block[1:]]))
        block = []
    return speeches


def _first_clause(text: str) -> str | None:
    m = re.search(r"[,;:]|\s--?\s|\s-\s", text)
    if m is None:
        return None
    clause = text[:m.start()].strip()
    return clause if len(clause.split()) >= 3 and len(clause) < len(text) * 0.8 else None


def make_pairs(kind: str, corpus: str | Path, *, limit: int | None = None, min_lines: int = 3) -> list[tuple[str, str]]:
    """Deterministic source/target pairs built from real text (for demos and the README figure).

    * ``"speech-first-line"`` (TinyShakespeare ``input.txt``): source = a speech of at least
      ``min_lines`` lines (lines joined by spaces), target = its first line. A "headline" task
      whose answer is in the input: a small GPT learns to copy the opening, BERT's
      extractive summarizer must pick the right sentence.
    * ``"snippet-first-clause"`` (SST ``rt_snippets.txt``): source = a review snippet that
      has a clause boundary (comma, semicolon, colon or dash), target = its first clause
      (at least 3 words, under 80% of the snippet).

    Pairs keep the corpus order; ``limit`` keeps the first N.
    """
    pairs: list[tuple[str, str]] = []
    if kind == "speech-first-line":
        for _, lines in shakespeare_speeches(corpus):
            if len(lines) >= min_lines:
                pairs.append((" ".join(lines), lines[0]))
    elif kind == "snippet-first-clause":
        for line in Path(corpus).read_text(encoding="utf-8", errors="replace").splitlines():
            text = " ".join(line.split())
            clause = _first_clause(text) if text else None
            if clause:
                pairs.append((text, clause))
    else:
        raise ValueError(f"unknown pair kind {kind!r}; expected 'speech-first-line' or 'snippet-first-clause'")
    return pairs[:limit] if limit is not None else pairs


def shakespeare_dialogues(corpus: str | Path, *, turns: int = 4,
                          limit: int | None = None) -> list[list[dict[str, str]]]:
    """Dialogues of ``turns`` consecutive speeches between exactly two speakers, the first
    speaker as 'user' and the second as 'assistant' (speeches flattened to one line)."""
    speeches = shakespeare_speeches(corpus)
    out: list[list[dict[str, str]]] = []
    i = 0
    while i + turns <= len(speeches) and (limit is None or len(out) < limit):
        window = speeches[i:i + turns]
        a, b = window[0][0], window[1][0]
        if a != b and all(s == (a if j % 2 == 0 else b) for j, (s, _) in enumerate(window)):
            out.append([{"role": "user" if j % 2 == 0 else "assistant", "content": " ".join(lines)}
                        for j, (_, lines) in enumerate(window)])
            i += turns
        else:
            i += 1
    return out


def write_pairs(pairs: Sequence[tuple[str, str]], path: str | Path) -> Path:
    """Write pairs as JSONL (``{"source", "target"}``) or, for a .tsv path, TSV with a header."""
    p = Path(path)
    with p.open("w", encoding="utf-8") as f:
        if p.suffix.lower() == ".tsv":
            f.write("source\ttarget\n")
            for s, t in pairs:
                f.write(f"{' '.join(s.split())}\t{' '.join(t.split())}\n")
        else:
            for s, t in pairs:
                f.write(json.dumps({"source": s, "target": t}, ensure_ascii=False) + "\n")
    return p
