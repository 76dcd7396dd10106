"""A small Python API over any gptbert run directory or Hugging Face checkpoint.

    from gptbert.api import LM
    lm = LM.load("runs/sst2-minilm")
    lm.classify(["a gripping, funny film"])     # [{'label': '1', 'score': 0.97, ...}]

The CLI, the HTTP server and the README examples all go through this class.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.precision import autocast
from gptbert.run import Run, load_run
from gptbert.tasks import capabilities

CAPABILITIES = ("classify", "embed", "fill_mask", "generate", "answer", "tag")
"""Everything a model may offer; :meth:`LM.capabilities` says what this one does (from its head and task)."""


class CapabilityError(ValueError):
    """The loaded model cannot do what was asked (e.g. fill-mask without an MLM head)."""


class LM:
    """A loaded model with its tokenizer, task and labels."""

    def __init__(self, run: Run, *, precision: str = "fp32", logits_model: nn.Module | None = None,
                 choice: dict[str, Any] | None = None) -> None:
        if run.baseline is not None:  # tfidf-lr: no network, no tokenizer; it classifies raw text
            self.run, self.model, self.tokenizer, self.precision, self.max_len = run, None, None, "fp32", 0
            self.logits_model = None  # type: ignore[assignment]
            self.choice = {"engine": "tfidf-lr", "precision": "fp32", "reason": "a TF-IDF + logistic regression run"}
            return
        if run.tokenizer is None:
            raise ValueError(f"{run.path}: no tokenizer files; every API call needs one")
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision: expected 'fp32' or 'bf16', got {precision!r}")
        if precision != "fp32" and getattr(run.model, "engine", "torch") != "torch":
            raise ValueError(f"{run.path}: an exported ONNX run runs as exported (fp32 graph or int8); "
                             f"precision {precision!r} applies to PyTorch runs only")
        self.run = run
        self.model: nn.Module = run.model.eval()
        self.logits_model: nn.Module = (logits_model or self.model).eval()
        """What computes the logits (classify, tag, fill-mask): the model, or ONNX Runtime's copy of it."""
        self.tokenizer = run.tokenizer
        self.precision = precision
        self.choice: dict[str, Any] = choice or {"engine": self.engine, "precision": precision, "reason": "given"}
        """What runs the model and why (``--precision auto``: the measurements it picked from)."""
        self.max_len = min(run.task.max_len or 128, self.config.block_size)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", precision: str = "fp32") -> "LM":
        """``precision`` fp32, bf16, or auto: the precision a matmul probe measures faster, and ONNX
        Runtime for the logits where it measured clearly faster at batch 1 (:mod:`gptbert.compress.engine`)."""
        run = load_run(path, device=device)
        if precision != "auto" or run.baseline is not None or getattr(run.model, "engine", "torch") != "torch":
            return cls(run, precision="fp32" if precision == "auto" else precision)
        from gptbert.compress.engine import pick_engine
        from gptbert.precision import resolve

        probed = resolve("auto", device)
        lm = cls(run, precision=probed.precision)
        onnx_model, choice = pick_engine(run, probed.precision, lm.capabilities)
        return cls(run, precision=probed.precision, logits_model=onnx_model,
                   choice={**choice.to_dict(), "precision_probe": probed.to_dict()})

    # -- what this model can do -------------------------------------------------------
    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def family(self) -> str:
        return "baseline" if self.run.baseline is not None else self.config.family

    @property
    def capabilities(self) -> set[str]:
        """What the tasks say a model with this head, trained for this run's task, can do
        (e.g. ``answer`` for a 'qa' head or a GPT tuned for QA, not for any GPT language model)."""
        if self.run.baseline is not None:
            return {"classify"}
        caps = capabilities(self.config, self.run.task.task)
        engine_caps = getattr(self.model, "capabilities", None)  # an ONNX graph gives logits only
        return caps & set(engine_caps) if engine_caps is not None else caps

    @property
    def engine(self) -> str:
        """What runs the model: 'torch', or 'onnxruntime' for an exported run directory ('tfidf-lr': no network)."""
        if self.run.baseline is not None:
            return "tfidf-lr"
        return str(getattr(self.logits_model if hasattr(self, "logits_model") else self.model, "engine", "torch"))

    def _require(self, capability: str) -> None:
        if capability not in self.capabilities:
            raise CapabilityError(
                f"{self.run.path}: a {self.family} model with head {self.config.head!r} cannot {capability.replace('_', '-')}; "
                f"it supports: {', '.join(sorted(self.capabilities))}"
            )

    @property
    def labels(self) -> list[str]:
        if self.run.baseline is not None:
            return list(self.run.baseline.labels)
        n = self.config.num_labels
        return self.run.labels if self.run.labels and len(self.run.labels) == n else [str(i) for i in range(n)]

    # -- tasks ----------------------------------------------------------------------
    def classify(self, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
                 batch_size: int = 32) -> list[dict[str, Any]]:
        """Label, its probability, and every label's probability for each text (or pair)."""
        self._require("classify")
        from gptbert.tasks.classify import predict_proba

        _check_texts(texts)
        examples = [(t, pairs[i] if pairs is not None else None, None) for i, t in enumerate(texts)]
        if self.run.baseline is not None:
            from gptbert.tasks.classify import baseline_proba

            probs = baseline_proba(self.run.baseline, examples)
        else:
            probs = predict_proba(self.logits_model, self.tokenizer, examples, max_len=self.max_len,
                                  batch_size=batch_size, precision=self.precision)
        labels = self.labels
        return [{"label": labels[int(p.argmax())], "score": float(p.max()),
                 "scores": {lab: float(x) for lab, x in zip(labels, p)}} for p in probs]

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], *, pooling: str = "mean", normalize: bool = True,
              batch_size: int = 32) -> np.ndarray:
        """Sentence embeddings (N, C): mean of the last hidden states, or the first token ('cls')."""
        from gptbert.models.heads import mean_pool
        from gptbert.tasks.classify import make_collator

        self._require("embed")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling: expected 'mean' or 'cls', got {pooling!r}")
        _check_texts(texts)
        collate = make_collator(self.tokenizer, self.config, self.max_len)
        device = next(self.model.parameters()).device
        out = []
        for start in range(0, len(texts), batch_size):
            batch = collate([(t, None, None) for t in texts[start : start + batch_size]])
            kwargs = {k: v.to(device) for k, v in batch.items() if k in ("token_type_ids", "attention_mask", "char_ids")}
            with autocast(self.precision, device):
                hidden = self.model.encode(batch["idx"].to(device), **kwargs).float()  # (B, T, C)
            mask = kwargs.get("attention_mask")
            vec = mean_pool(hidden, mask) if pooling == "mean" else hidden[:, 0]  # (B, C)
            if normalize:
                vec = torch.nn.functional.normalize(vec, dim=-1)
            out.append(vec.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def fill_mask(self, text: str, *, top_k: int = 5) -> list[dict[str, Any]]:
        """Top-k fillers of the (first) mask token with probabilities and the filled text."""
        self._require("fill_mask")
        from gptbert.tasks.pretrain import fill_mask

        return fill_mask(self.logits_model, self.tokenizer, text, max_len=self.max_len, top_k=top_k, precision=self.precision)

    def generate(self, prompts: Sequence[str] | str, *, max_new_tokens: int | None = None,
                 rerank: "LM | str | Path | None" = None,
                 num_candidates: int | None = None, **options: Any) -> list[str]:
        """Continuations of each prompt (greedy unless do_sample / beams are set; ``max_new_tokens``
        default 50, or a reranking generator's own).

        ``rerank``: a scorer (an :class:`LM` or run directory of a 'rerank' or 2-label classify
        run): generate ``num_candidates`` candidates and return the one with the best fused score
        (:meth:`rerank`). A rerank run always generates this way, with the generator it was trained for.
        """
        self._require("generate")
        if rerank is not None or self._is_reranker:
            return [r["output"] for r in self.rerank(prompts, scorer=rerank, num_candidates=num_candidates,
                                                     max_new_tokens=max_new_tokens, **options)]
        if num_candidates is not None:
            raise ValueError("num_candidates is for reranking: give rerank=SCORER_RUN, or load (serve) a rerank run")
        from gptbert.generate import generate_text

        if isinstance(prompts, str):
            prompts = [prompts]
        _check_texts(prompts, allow_empty=True)
        with autocast(self.precision, next(self.model.parameters()).device):
            return generate_text(self.model, self.tokenizer, list(prompts), max_new_tokens=max_new_tokens or 50,
                                 **options)

    @property
    def _is_reranker(self) -> bool:
        return self.run.task.task == "rerank"

    def rerank(self, sources: Sequence[str] | str, *, scorer: "LM | str | Path | None" = None,
               num_candidates: int | None = None, **options: Any) -> list[dict[str, Any]]:
        """Generate-then-rerank (:mod:`gptbert.tasks.rerank`): per source the reranked ``output``,
        the generator's ``plain`` output and every candidate with its length-normalised ``logprob``,
        ``scorer`` log-probability and fused ``score``, best first.

        This model is the generator and ``scorer`` the scorer; or, for a rerank run, this model is
        the scorer and its generator the one it was trained with. ``options``: ``weight`` (λ;
        default the scorer's tuned one), ``method`` ('sample' or 'beam'), ``temperature``,
        ``seed``, ``max_new_tokens``, ``top_k`` / ``top_p``."""
        from gptbert.tasks.rerank import generator_of, rerank_with_runs

        if isinstance(sources, str):
            sources = [sources]
        _check_texts(sources, allow_empty=True)
        picked = {k: v for k, v in options.items() if v is not None and k in (
            "weight", "method", "temperature", "seed", "max_new_tokens", "top_k", "top_p")}
        picked.update(num_candidates=num_candidates, precision=self.precision)
        if scorer is None:
            if not self._is_reranker:
                raise CapabilityError(f"{self.run.path}: reranking needs a scorer (scorer=...), or a rerank run")
            generator = generator_of(self.run.task.options, str(next(self.model.parameters()).device))
            return rerank_with_runs(generator, self.run, list(sources), **picked)
        scorer_run = scorer.run if isinstance(scorer, LM) else load_run(scorer)
        return rerank_with_runs(self.run, scorer_run, list(sources), **picked)

    def stream(self, prompt: str, *, max_new_tokens: int = 50, **options: Any) -> Iterator[str]:
        """Yield the continuation of one prompt piece by piece."""
        self._require("generate")
        if self._is_reranker:
            raise CapabilityError(f"{self.run.path}: a rerank run picks among whole candidates; it cannot stream")
        from gptbert.generate import stream

        yield from stream(self.model, self.tokenizer, prompt, max_new_tokens=max_new_tokens, **options)

    def answer(self, question: str, context: str, **options: Any) -> dict[str, Any]:
        """Answer span (BERT extractive) or generated answer (GPT) with its score."""
        self._require("answer")
        from gptbert.tasks.qa import answer

        options.setdefault("max_len", self.max_len)
        return answer(self.model, self.tokenizer, [question], [context], **options)[0]

    def tag(self, texts: Sequence[str]) -> list[list[tuple[str, str]]]:
        """(word, tag) pairs for each text (token classification)."""
        self._require("tag")
        from gptbert.tasks.tokens import tag

        return tag(self.logits_model, self.tokenizer, list(texts), self.labels)


def _check_texts(texts: Sequence[str], *, allow_empty: bool = False) -> None:
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got a single str (wrap it in a list)")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}]: expected str, got {type(t).__name__}")
        if not allow_empty and not t.strip():
            raise ValueError(f"texts[{i}] is empty")
