"""Write the small sentiment data set and review-like corpus bundled in gptbert/demo_data.

Every sentence is composed here from our own word lists, so the package ships no
third-party text. Run: python scripts/make_demo_data.py (deterministic, seed 13).
"""

from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "gptbert" / "demo_data"

SUBJECTS = [
    "the plot", "the acting", "the script", "the soundtrack", "the ending", "the cast", "the director's work",
    "the camera work", "the dialogue", "the pacing", "the story", "the lead performance", "the humour",
    "the visual style", "the final act", "the opening scene", "this film", "this movie", "the sequel",
    "the animation", "the editing", "the score", "the characters", "the premise", "the set design",
]
POSITIVE = [
    "wonderful", "moving", "clever", "gripping", "charming", "delightful", "beautifully made", "sharp",
    "brilliant", "warm", "thrilling", "heartfelt", "inventive", "funny", "touching", "superb", "elegant",
    "memorable", "confident", "fresh",
]
NEGATIVE = [
    "dull", "clumsy", "tedious", "lifeless", "forgettable", "messy", "predictable", "flat", "boring",
    "awkward", "shallow", "tiresome", "bland", "confused", "painful", "sloppy", "hollow", "stale",
    "overlong", "cheap",
]
INTENSIFIERS = ["", "", "really ", "truly ", "quite ", "surprisingly ", "utterly ", "oddly ", "simply "]
POS_CLAUSES = [
    "i would gladly watch it again", "it kept me smiling the whole time", "the time flew by",
    "i left the cinema in a great mood", "it earns every minute", "the audience clapped at the end",
    "it is worth the ticket", "i will recommend it to my friends", "it stays with you for days",
]
NEG_CLAUSES = [
    "i checked my watch twice", "i nearly fell asleep", "it wastes a decent idea", "nothing really works",
    "the audience left early", "it is not worth the ticket", "i want those two hours back",
    "it falls apart in the middle", "it forgets what it wants to say",
]


PLURAL = {"the characters", "the cast"}


def be(subject: str) -> str:
    return f"{subject} {'are' if subject in PLURAL else 'is'}"


def sentence(rng: random.Random, label: int) -> str:
    good, bad = (POSITIVE, NEGATIVE) if label == 1 else (NEGATIVE, POSITIVE)
    good_clauses = POS_CLAUSES if label == 1 else NEG_CLAUSES
    subj = rng.choice(SUBJECTS)
    kind = rng.random()
    if kind < 0.35:
        text = f"{be(subj)} {rng.choice(INTENSIFIERS)}{rng.choice(good)}"
    elif kind < 0.55:
        # Negated opposite adjective: "not dull" is positive, "not clever" negative.
        text = f"{be(subj)} not {rng.choice(bad)} at all" if rng.random() < 0.5 else f"{be(subj)} never {rng.choice(bad)}"
    elif kind < 0.75:
        other = rng.choice([s for s in SUBJECTS if s != subj])
        text = f"{be(other)} {rng.choice(bad)}, but {be(subj)} {rng.choice(good)} and {rng.choice(good_clauses)}"
    elif kind < 0.9:
        text = f"{rng.choice(good_clauses)} ; {subj} {'feel' if subj in PLURAL else 'feels'} {rng.choice(INTENSIFIERS)}{rng.choice(good)}"
    else:
        text = f"a {rng.choice(good)} , {rng.choice(good)} film where {be(subj)} {rng.choice(good)}"
    return text[0].upper() + text[1:] + " ."


def corpus_line(rng: random.Random) -> str:
    parts = [sentence(rng, rng.randint(0, 1)) for _ in range(rng.randint(1, 3))]
    return " ".join(parts)


def main() -> None:
    rng = random.Random(13)
    OUT.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()

    def unique_rows(n: int) -> list[tuple[str, int]]:
        rows = []
        while len(rows) < n:
            label = rng.randint(0, 1)
            text = sentence(rng, label)
            if text not in seen:
                seen.add(text)
                rows.append((text, label))
        return rows

    for name, n in (("train.tsv", 640), ("dev.tsv", 160)):
        with open(OUT / name, "w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            for text, label in unique_rows(n):
                f.write(f"{text}\t{label}\n")
    with open(OUT / "corpus.txt", "w", encoding="utf-8") as f:
        for _ in range(3000):
            f.write(corpus_line(rng) + "\n")


if __name__ == "__main__":
    main()
