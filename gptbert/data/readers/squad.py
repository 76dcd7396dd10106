"""SQuAD v1.1 / v2.0 files, with every answer checked against its context."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gptbert.data.readers.formats import MAX_LISTED, DataError, DataWarning, PathLike, open_bytes


@dataclass
class QAExample:
    """One SQuAD question. ``answer_start`` is None when the answer is not a span of the context."""

    id: str
    question: str
    context: str
    answers: list[dict[str, Any]]
    title: str = ""
    is_impossible: bool = False

    @property
    def answerable(self) -> bool:
        """True when at least one answer is a verified span of the context."""
        return any(a.get("answer_start") is not None for a in self.answers)


@dataclass(frozen=True)
class QAProblem:
    """An answer whose ``answer_start`` did not point at its text."""

    question_id: str
    message: str
    fixed: bool
    """True when the answer was located elsewhere in the context and its start corrected."""

    def __str__(self) -> str:
        return f"question {self.question_id}: {self.message}"


@dataclass
class SquadData:
    """Questions of a SQuAD file; list-like. ``problems`` lists answers that needed fixing or
    could not be found in their context."""

    examples: list[QAExample]
    problems: list[QAProblem]
    source: str | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[QAExample]:
        return iter(self.examples)

    def __getitem__(self, i: int) -> QAExample:
        return self.examples[i]

    @property
    def unfixed(self) -> list[QAProblem]:
        return [p for p in self.problems if not p.fixed]

    def subset(self, idx: Sequence[int]) -> SquadData:
        keep = [self.examples[i] for i in idx]
        ids = {e.id for e in keep}
        return SquadData(keep, [p for p in self.problems if p.question_id in ids], self.source)


def _loose_find(context: str, answer: str, near: int | None) -> tuple[int, int] | None:
    """Find ``answer`` in ``context`` ignoring case and runs of whitespace; (start, end) in context."""
    words = answer.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    found = [(m.start(), m.end()) for m in pattern.finditer(context)]
    if not found:
        return None
    if near is None:
        return found[0]
    return min(found, key=lambda se: abs(se[0] - near))


def _exact_find(context: str, answer: str, near: int | None) -> int | None:
    starts: list[int] = []
    i = context.find(answer)
    while i != -1:
        starts.append(i)
        i = context.find(answer, i + 1)
    if not starts:
        return None
    return starts[0] if near is None else min(starts, key=lambda s: abs(s - near))


def load_squad_doc(p: Path) -> dict[str, Any]:
    """The parsed SQuAD JSON object of ``p``; a DataError naming the file and line otherwise."""
    raw = open_bytes(p)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{p}:{line}: undecodable bytes (not valid UTF-8)") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{p}: expected a SQuAD object {{\"version\": ..., \"data\": [articles]}}")
    return doc


def _need(p: Path, obj: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
    """``obj[key]`` of type ``typ``, else a DataError naming the file and the JSON path ``where``."""
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{p}: {where}: missing {key!r}")
    if not isinstance(obj[key], typ):
        raise DataError(f"{p}: {where}.{key}: expected {getattr(typ, '__name__', typ)}, "
                        f"found {type(obj[key]).__name__}")
    return obj[key]


def _check_answer(p: Path, context: str, ans: Any, qid: str, where: str,
                  fix_offsets: bool) -> tuple[dict[str, Any], QAProblem | None]:
    """The answer with a verified (or corrected, or None) ``answer_start``, and what was wrong with it."""
    text = _need(p, ans, "text", str, where)
    start = ans.get("answer_start") if isinstance(ans, dict) else None
    if start is not None and (isinstance(start, bool) or not isinstance(start, int)):
        raise DataError(f"{p}: {where} (question {qid}): answer_start must be an integer or null")
    if start is not None and 0 <= start and context[start:start + len(text)] == text:
        return {"text": text, "answer_start": start}, None
    shown = "missing" if start is None else (
        f"{start} points at {context[start:start + len(text)]!r}" if 0 <= start < len(context)
        else f"{start} is outside the context ({len(context)} characters)")
    new_start: int | None = None
    new_text = text
    if fix_offsets:
        new_start = _exact_find(context, text, start)
        if new_start is None:
            span = _loose_find(context, text, start)
            if span is not None:
                new_start, new_text = span[0], context[span[0]:span[1]]
    if new_start is not None:
        msg = f"answer {text!r}: answer_start {shown}; found at {new_start}"
        if new_text != text:
            msg += f" as {new_text!r}"
        problem = QAProblem(qid, msg, fixed=True)
    else:
        problem = QAProblem(qid, f"answer {text!r} is not in the context (answer_start {shown})", fixed=False)
    return {"text": new_text, "answer_start": new_start}, problem


def _read_examples(p: Path, doc: dict[str, Any], fix_offsets: bool) -> tuple[list[QAExample], list[QAProblem]]:
    examples: list[QAExample] = []
    problems: list[QAProblem] = []
    seen_ids: set[str] = set()
    for ai, article in enumerate(doc["data"]):
        where_a = f"data[{ai}]"
        title = article.get("title", "") if isinstance(article, dict) else ""
        for pi, para in enumerate(_need(p, article, "paragraphs", list, where_a)):
            where_p = f"{where_a}.paragraphs[{pi}]"
            context = _need(p, para, "context", str, where_p)
            for qi, qa in enumerate(_need(p, para, "qas", list, where_p)):
                where_q = f"{where_p}.qas[{qi}]"
                qid = str(_need(p, qa, "id", (str, int), where_q))
                if qid in seen_ids:
                    raise DataError(f"{p}: {where_q}: duplicate question id {qid!r}")
                seen_ids.add(qid)
                question = _need(p, qa, "question", str, where_q)
                if not question.strip():
                    raise DataError(f"{p}: {where_q} (question {qid}): empty question")
                impossible = bool(qa.get("is_impossible", False))
                answers: list[dict[str, Any]] = []
                for ni, ans in enumerate(_need(p, qa, "answers", list, where_q)):
                    answer, problem = _check_answer(p, context, ans, qid, f"{where_q}.answers[{ni}]", fix_offsets)
                    answers.append(answer)
                    if problem is not None:
                        problems.append(problem)
                examples.append(QAExample(qid, question, context, answers, str(title), impossible))
    return examples, problems


def read_squad(
    path: PathLike,
    *,
    on_bad_answer: Literal["report", "skip", "raise"] = "report",
    fix_offsets: bool = True,
) -> SquadData:
    """Read a SQuAD v1.1 (or v2.0) JSON file.

    Each answer's ``answer_start`` is checked against its text. A wrong or missing start is
    corrected when the text occurs in the context (exactly, else ignoring case and
    whitespace, in which case the answer text becomes the context's span); otherwise the
    start is set to None (the answer is then not a span, e.g. a multiple-choice answer).
    Every such answer is recorded in ``problems`` with its question id.

    ``on_bad_answer``: ``"report"`` keeps all questions and warns once (DataWarning) with a
    summary; ``"skip"`` drops questions without any span answer; ``"raise"`` raises a
    DataError when an answer could not be found in its context.
    """
    if on_bad_answer not in ("report", "skip", "raise"):
        raise DataError(f"on_bad_answer={on_bad_answer!r}; expected 'report', 'skip' or 'raise'")
    p = Path(path)
    examples, problems = _read_examples(p, load_squad_doc(p), fix_offsets)
    unfixed = [q for q in problems if not q.fixed]
    if on_bad_answer == "raise" and unfixed:
        listed = "; ".join(str(q) for q in unfixed[:MAX_LISTED])
        more = f" (+{len(unfixed) - MAX_LISTED} more)" if len(unfixed) > MAX_LISTED else ""
        raise DataError(f"{p}: {len(unfixed)} answer(s) not found in their context: {listed}{more}")
    if on_bad_answer == "skip":
        examples = [e for e in examples if e.answerable or e.is_impossible]
    if problems:
        n_fixed = len(problems) - len(unfixed)
        warnings.warn(
            f"{p}: {len(unfixed)} answer(s) not in their context (kept with answer_start=None"
            f"{', questions without a span dropped' if on_bad_answer == 'skip' else ''}), "
            f"{n_fixed} answer_start(s) corrected; first: {problems[0]}",
            DataWarning, stacklevel=2,
        )
    if not examples:
        raise DataError(f"{p}: no questions" + (" with a span answer" if on_bad_answer == "skip" else ""))
    return SquadData(examples, problems, str(p))
