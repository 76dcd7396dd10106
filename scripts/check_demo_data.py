"""How far a bag of n-grams gets on the bundled demo task (gptbert/demo_data).

TF-IDF over word 1-2-grams and character 2-5-grams (within words) + logistic regression,
trained on train.tsv, scored on dev.tsv: overall and per kind of sentence (plain, negated
frame, contrast). The demo data is meant to keep this well below 1.0 (see
scripts/make_demo_data.py). Needs scikit-learn. Run: python scripts/check_demo_data.py
"""

from __future__ import annotations

import csv
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "gptbert" / "demo_data"
NEGATIONS = (" not ", "never", "no one", "nobody")
CONNECTIVES = (" but ", "although", " still ", "even though")


def read(path: Path) -> tuple[list[str], list[int]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def kind(text: str) -> str:
    low = f" {text.lower()} "
    if any(c in low for c in CONNECTIVES):
        return "contrast"
    return "negated" if any(n in low for n in NEGATIONS) else "plain / affirmative frame"


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.feature_extraction.text import TfidfVectorizer

    train_x, train_y = read(DATA / "train.tsv")
    dev_x, dev_y = read(DATA / "dev.tsv")
    model = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        LogisticRegression(C=10.0, max_iter=2000))
    model.fit(train_x, train_y)
    pred = model.predict(dev_x)
    right = [int(p == y) for p, y in zip(pred, dev_y)]
    majority = max(dev_y.count(0), dev_y.count(1)) / len(dev_y)
    print(f"train {len(train_x)} rows, dev {len(dev_x)} rows; majority class {majority:.3f}")
    print(f"tfidf(word 1-2 + char_wb 2-5) + logistic regression: dev accuracy {sum(right) / len(right):.3f}")
    for k in sorted({kind(t) for t in dev_x}):
        hits = [r for r, t in zip(right, dev_x) if kind(t) == k]
        print(f"  {k:<26} {sum(hits) / len(hits):.3f} ({len(hits)} rows)")


if __name__ == "__main__":
    main()
