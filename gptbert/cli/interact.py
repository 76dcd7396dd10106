"""``gptbert fill-mask``, ``gptbert embed`` and ``gptbert chat``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from gptbert.cli import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("fill-mask", help="BERT or hybrid: the most likely tokens for [MASK], with probabilities",
                       description="Needs a model with an MLM head (a BERT pre-training run or checkpoint) or a "
                                   "GPT-BERT hybrid with its 'lm' head (read in masked mode).")
    f.add_argument("run", help="run directory (or Hugging Face directory) with an MLM head")
    f.add_argument("text", help='text with one mask token, e.g. "the movie was [MASK] ."')
    f.add_argument("--top-k", type=int, default=5, help="candidates to show (default 5)")
    f.add_argument("--json", action="store_true", help="print JSON instead of a table")
    f.set_defaults(func=cmd_fill_mask)

    e = sub.add_parser("embed", help="sentence embeddings of texts, saved as a .npy array (N, C)")
    e.add_argument("run", help="run directory (or Hugging Face directory)")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="text file, one text a line")
    src.add_argument("--text", nargs="+", help="text(s) to embed")
    e.add_argument("--out", required=True, help="output .npy file (an existing file is replaced only with --force)")
    e.add_argument("--force", action="store_true", help="replace an existing --out file")
    e.add_argument("--pooling", choices=["mean", "cls"], default="mean",
                   help="mean of the last hidden states (default) or the first ([CLS]) token")
    e.add_argument("--normalize", action="store_true", help="L2-normalise every embedding")
    e.add_argument("--batch-size", type=int, default=32, help="texts per model call (default 32)")
    e.set_defaults(func=cmd_embed)

    c = sub.add_parser("chat", help="talk to a GPT model in the terminal (streams the reply)",
                       description="Reads one message a line from standard input; /reset forgets the "
                                   "conversation, /quit (or end of input) leaves. Replies stream to standard output.")
    c.add_argument("run", help="GPT run directory (best: one fine-tuned on dialogues)")
    c.add_argument("--max-new-tokens", type=int, default=64, help="longest reply in tokens (default 64)")
    c.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    c.add_argument("--top-k", type=int, default=None, help="sample from the K most likely tokens only")
    c.add_argument("--top-p", type=float, default=None,
                   help="sample from the smallest set of tokens with probability P")
    c.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="> 1 makes repeated tokens less likely (default 1: off)")
    c.add_argument("--seed", type=int, default=None, help="seed of the sampler (reproducible replies)")
    c.add_argument("--system", default=None, help="a system message put before the conversation")
    c.set_defaults(func=cmd_chat)


def _lm(path: str) -> Any:
    from gptbert.api import LM

    try:
        return LM.load(path)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from None


def cmd_fill_mask(args: argparse.Namespace) -> int:
    lm = _lm(args.run)
    if args.top_k < 1:
        raise CLIError("--top-k must be >= 1")
    try:
        results = lm.fill_mask(args.text, top_k=args.top_k)
    except ValueError as e:  # CapabilityError is a ValueError
        raise CLIError(str(e)) from None
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return 0
    width = max(5, *(len(r["token"]) for r in results))
    print(f"{'token'.ljust(width)}  probability  sequence")
    for r in results:
        print(f"{r['token'].ljust(width)}  {r['score']:.4f}       {r['sequence']}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    import io

    import numpy as np

    from gptbert.cli._args import check_out_file, read_text_option
    from gptbert.io.files import atomic_write_bytes

    out = Path(args.out)
    if out.suffix != ".npy" and not out.is_dir():  # np.save would add it: check and write the file that is really written
        out = out.with_name(out.name + ".npy")
    out = check_out_file(out, force=args.force)
    if args.batch_size < 1:
        raise CLIError(f"--batch-size {args.batch_size}: expected a positive integer")
    texts = list(args.text or [])
    if args.input:
        texts = [line for line in read_text_option(args.input, "--input").splitlines() if line.strip()]
        if not texts:
            raise CLIError(f"--input {args.input}: no text lines")
    lm = _lm(args.run)
    try:
        vectors = lm.embed(texts, pooling=args.pooling, normalize=args.normalize, batch_size=args.batch_size)
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from None
    buffer = io.BytesIO()
    np.save(buffer, vectors.astype(np.float32))
    atomic_write_bytes(out, buffer.getvalue())
    print(json.dumps({"out": str(out), "shape": list(vectors.shape), "pooling": args.pooling,
                      "normalized": bool(args.normalize)}))
    return 0


# ---------------------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------------------


class ChatSession:
    """A conversation with a GPT model: history, prompt building and streamed replies."""

    def __init__(self, run: Any, *, max_new_tokens: int = 64, system: str | None = None, **generation: Any) -> None:
        from gptbert.tasks.common import is_causal_lm
        from gptbert.tasks.generate import CHAT_SEPARATOR, GenerateOptions

        config = run.config
        if not is_causal_lm(config):
            raise ValueError(f"{run.path}: chat needs a GPT model (or a hybrid) with an 'lm' head; this is a {config.family} model "
                             f"with head {config.head!r}")
        if run.tokenizer is None:
            raise ValueError(f"{run.path}: no tokenizer files")
        self.run = run
        self.model = run.model.eval()
        self.tokenizer = run.tokenizer
        self.max_len = min(run.task.max_len or config.block_size, config.block_size)
        self.max_new_tokens = max(1, min(max_new_tokens, self.max_len // 2))
        self.generation = generation
        options = run.task.options  # a generation run keeps the separator it was trained with
        self.separator = (options.separator if isinstance(options, GenerateOptions) else None) or CHAT_SEPARATOR
        self.system = system
        self.history: list[tuple[str, str]] = []

    def reset(self) -> None:
        self.history = []

    def prompt_ids(self) -> list[int]:
        from gptbert.tasks.generate import format_chat, prompt_ids

        turns = ([("system", self.system)] if self.system else []) + self.history
        room = self.max_len - self.max_new_tokens
        text = format_chat(turns, self.tokenizer, max_tokens=room)
        return prompt_ids(self.tokenizer, text, room, separator=self.separator, keep_start=False)

    def reply(self, message: str) -> Any:
        """Yield the reply to ``message`` piece by piece; the history records it at the end."""
        from gptbert.generate import GenerationConfig, stream
        from gptbert.tasks.generate import TURN_SEPARATOR

        self.history.append(("user", message))
        temperature = float(self.generation.get("temperature") or 0.0)
        cfg = GenerationConfig(
            max_new_tokens=self.max_new_tokens, do_sample=temperature > 0, temperature=temperature or 1.0,
            top_k=self.generation.get("top_k"), top_p=self.generation.get("top_p"),
            repetition_penalty=float(self.generation.get("repetition_penalty") or 1.0),
            seed=self.generation.get("seed"), stop_strings=[TURN_SEPARATOR],
        )
        pieces: list[str] = []
        for piece in stream(self.model, self.tokenizer, self.prompt_ids(), cfg):
            pieces.append(piece)
            yield piece
        self.history.append(("assistant", " ".join("".join(pieces).split())))


def chat_loop(session: ChatSession, stdin: TextIO, stdout: TextIO, *, interactive: bool = False,
              stderr: TextIO | None = None) -> int:
    """Read messages until /quit or end of input; stream each reply on its own line."""
    err = stderr or sys.stderr
    if interactive:
        print("chat: /reset forgets the conversation, /quit leaves", file=err)
    while True:
        if interactive:
            print("you> ", end="", file=err, flush=True)
        line = stdin.readline()
        if not line:
            break
        message = line.strip()
        if not message:
            continue
        if message in ("/quit", "/exit"):
            break
        if message == "/reset":
            session.reset()
            print("(conversation reset)", file=err if interactive else stdout, flush=True)
            continue
        if interactive:
            print("bot> ", end="", file=stdout, flush=True)
        for piece in session.reply(message):
            print(piece, end="", file=stdout, flush=True)
        print(file=stdout, flush=True)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from gptbert.run import load_run

    checks = (("--max-new-tokens", args.max_new_tokens, args.max_new_tokens >= 1, "a positive integer"),
              ("--temperature", args.temperature, args.temperature >= 0, "a number >= 0"),
              ("--top-k", args.top_k, args.top_k is None or args.top_k >= 1, "a positive integer"),
              ("--top-p", args.top_p, args.top_p is None or 0 < args.top_p <= 1, "a number in (0, 1]"),
              ("--repetition-penalty", args.repetition_penalty, args.repetition_penalty > 0, "a number > 0"))
    for option, value, ok, expected in checks:
        if not ok:
            raise CLIError(f"{option} {value}: expected {expected}")
    try:
        run = load_run(args.run)
        session = ChatSession(run, max_new_tokens=args.max_new_tokens, system=args.system,
                              temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                              repetition_penalty=args.repetition_penalty, seed=args.seed)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from None
    return chat_loop(session, sys.stdin, sys.stdout, interactive=sys.stdin.isatty())
