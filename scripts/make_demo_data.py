"""Write the small sentiment data set and review-like corpus bundled in gptbert/demo_data.

Every sentence is composed here from our own word lists, so the package ships no
third-party text. Run: python scripts/make_demo_data.py (deterministic, seed 13).

The task is built so that a bag of words (or of word n-grams) cannot solve it, while a model
that reads the sentence in order can learn much of it:

* plain clauses ("the plot is dull in places"): the adjective decides; easy for every model;
* negation at a distance ("i would not say that the plot is really dull"): the negation word
  is two to five words away from the adjective, and every negating frame has an affirmative
  twin with the same other words ("i would say that ..."), so neither "not" nor the adjective
  alone says the label - only the two together do;
* contrast ("the plot is dull in places , but the acting is superb throughout"): one positive
  and one negative clause, the label is the main clause's, which is the second one after "but"
  or after an "although ..." clause and the first one before ", even though": the same words
  in another order have the other label.

Every clause ends with a phrase drawn from one list ("in places", "overall", ...), so the word
after an adjective does not tell where the adjective stands. The corpus pairs each sentence with
a short verdict ("worth seeing ." / "skip it .") as a review's last line would: a language model
pre-trained on it learns what the sentences mean as a whole.
"""

from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "gptbert" / "demo_data"
SIZES = (("train.tsv", 2000), ("dev.tsv", 400))
CORPUS_LINES = 4000

SUBJECTS = ["the plot", "the acting", "the script", "the ending", "the cast", "the dialogue", "the pacing",
            "the story", "the humour", "the characters", "this film", "the soundtrack"]
POSITIVE = ["wonderful", "moving", "clever", "gripping", "charming", "brilliant", "warm", "funny", "touching",
            "superb", "memorable", "fresh"]
NEGATIVE = ["dull", "clumsy", "tedious", "lifeless", "messy", "predictable", "flat", "boring", "awkward",
            "shallow", "bland", "painful"]
INTENSIFIERS = ["", "", "really ", "truly ", "quite "]
ENDINGS = ["in places", "overall", "at times", "by the end", "throughout", "for the most part"]
"""Every clause ends with one of these, whatever its place in the sentence."""
VERDICTS = {1: ["worth seeing .", "recommended .", "i liked it ."],
            0: ["skip it .", "a waste of time .", "i disliked it ."]}

PLURAL = {"the characters", "the cast"}

# (negated, affirmative) frames around "{s}" (subject) and "{a}" (adjective); {is} / {was} agree with {s}.
FRAMES = [
    ("i would not say that {s} {is} {a}", "i would say that {s} {is} {a}"),
    ("i never found {s} {a}", "i always found {s} {a}"),
    ("it is not true that {s} {is} {a}", "it is true that {s} {is} {a}"),
    ("{s} {is} not {a}", "{s} {is} {a}"),
]
# Two clauses of opposite polarity: (template, which clause decides the label).
CONTRASTS: list[tuple[str, int]] = [
    ("{0} , but {1}", 1),
    ("although {0} , {1}", 1),
    ("{0} , even though {1}", 0),
]


def adjective(rng: random.Random, polarity: int) -> str:
    return rng.choice(INTENSIFIERS) + rng.choice(POSITIVE if polarity == 1 else NEGATIVE)


def clause(rng: random.Random, polarity: int, negation: float) -> str:
    """A clause whose meaning has ``polarity`` (1 good, 0 bad); negated with probability ``negation``."""
    subj = rng.choice(SUBJECTS)
    negated = rng.random() < negation
    neg, plain = rng.choice(FRAMES) if negation else FRAMES[-1]
    frame = neg if negated else plain
    text = frame.format(s=subj, a=adjective(rng, polarity ^ negated),
                        **{"is": "are" if subj in PLURAL else "is", "was": "were" if subj in PLURAL else "was"})
    return f"{text} {rng.choice(ENDINGS)}"


def sentence(rng: random.Random, label: int) -> str:
    """One review sentence whose overall sentiment is ``label``."""
    kind = rng.random()
    if kind < 0.45:
        text = clause(rng, label, negation=0.0)
    elif kind < 0.7:
        text = clause(rng, label, negation=0.5)
    else:
        template, main = rng.choice(CONTRASTS)
        parts = [clause(rng, 1 - label, negation=0.1), clause(rng, label, negation=0.1)]
        if main == 0:
            parts.reverse()
        text = template.format(*parts)
    return text[0].upper() + text[1:] + " ."


def unique_rows(rng: random.Random, n: int, seen: set[str]) -> list[tuple[str, int]]:
    """``n`` labelled sentences not in ``seen`` (which they join), the labels balanced by chance."""
    rows: list[tuple[str, int]] = []
    while len(rows) < n:
        label = rng.randint(0, 1)
        text = sentence(rng, label)
        if text not in seen:
            seen.add(text)
            rows.append((text, label))
    return rows


def main() -> None:
    rng = random.Random(13)
    OUT.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for name, n in SIZES:
        with open(OUT / name, "w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            for text, label in unique_rows(rng, n, seen):
                f.write(f"{text}\t{label}\n")
    with open(OUT / "corpus.txt", "w", encoding="utf-8") as f:  # no train or dev sentence in it
        for text, label in unique_rows(rng, CORPUS_LINES, seen):
            f.write(f"{text} {rng.choice(VERDICTS[label]).capitalize()}\n")


if __name__ == "__main__":
    main()
