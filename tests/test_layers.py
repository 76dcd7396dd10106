"""Imports flow one way: no cycle among gptbert's modules, no module importing a higher layer.

Every ``import`` / ``from ... import`` of a gptbert module counts, at module level and inside
functions alike (they keep ``gptbert --help`` fast, but they are dependencies all the same);
only imports under ``if TYPE_CHECKING:`` are left out. The layers are those of
docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gptbert"

LAYERS: dict[str, int] = {
    # layer 0: no gptbert imports below it
    "config": 0, "flops": 0, "metrics": 0, "precision": 0, "io.files": 0, "io.layout": 0,
    # 1: the networks, their files, tokenizers, decoding, model transforms
    "models": 1, "io": 1, "tokenizer": 1, "generate": 1, "compress.quantize": 1, "compress.export": 1,
    # 2: data and the one training loop (and what builds on a training callback)
    "data": 2, "training": 2, "tracking": 2, "compress.prune": 2, "compress.io": 2, "compress.distill": 2,
    # 3: tasks, run directories, where a model comes from
    "tasks": 3, "run": 3, "source": 3,
    # 4: recipes over tasks, baselines, compression commands, measurement
    "baselines.logreg": 2, "baselines.tfidf": 2,
    "recipes": 4, "finetune_recipe": 4, "baselines": 4, "compress": 4, "measure": 4, "distributed": 4,
    # 5: comparing, recommending, reporting
    "results": 5, "recommend": 5, "report": 5, "compare": 5,
    # 6: the API every front end uses; 7: the front ends
    "api": 6, "cli": 7, "serve": 7, "__main__": 7, "": 7,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """'gptbert.tasks.classify.ClassifyTask' -> 'tasks.classify' (the module it lives in)."""
    rel = name.removeprefix("gptbert").removeprefix(".")
    while rel not in MODULES:
        if "." not in rel:
            return "" if rel == "" else (rel if rel in MODULES else None)
        rel = rel.rsplit(".", 1)[0]
    return rel


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    return skip


def imports_of(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "gptbert"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "gptbert":
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def layer_of(module: str) -> int:
    probe = module
    while probe not in LAYERS:
        probe = probe.rsplit(".", 1)[0] if "." in probe else ""
    return LAYERS[probe]


def test_every_module_has_a_layer() -> None:
    assert all(isinstance(layer_of(m), int) for m in MODULES)


def test_no_import_goes_up_a_layer() -> None:
    upward = sorted(f"gptbert.{a} (layer {layer_of(a)}) imports gptbert.{b} (layer {layer_of(b)})"
                    for a, outs in GRAPH.items() for b in outs if layer_of(b) > layer_of(a))
    assert not upward, "\n".join(upward)


def test_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in GRAPH:
        if m not in index:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(f"gptbert.{m}" for m in c) for c in cycles)


def test_the_checker_sees_function_level_imports() -> None:
    assert "io.checkpoint" in GRAPH["run"] or "io" in GRAPH["run"]
    assert any(t.startswith("compress") for t in GRAPH["recipes"])  # imported inside distill()
