#!/usr/bin/python3
"""Writes the labeled sentiment corpus of the `sentiment` example: examples/data/sentiment.tsv.

Source: every sentence is assembled here from phrase lists written for this example (reviews of
films: subjects, adjectives, verbs, negations, contrasts, intensifiers); no outside data. The
corpus is deterministic (seeded), so rerunning this script rewrites the same file.

    /usr/bin/python3 scripts/make_sentiment_corpus.py [OUT.tsv]

Each line: `label<TAB>text`, label `positive` or `negative`; a `split` column marks the held-out
rows (`train` / `test`, 80/20) so training and the accuracy check agree on them.
"""
import os
import random
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUBJECTS = [
    "the movie", "this film", "the plot", "the acting", "the script", "the soundtrack",
    "the ending", "the cast", "the dialogue", "the pacing", "the cinematography", "the story",
    "the lead performance", "the direction", "the humour", "the final act", "the visuals",
    "this sequel", "the screenplay", "the score", "the characters", "the opening scene",
]
POSITIVE = [
    "amazing", "wonderful", "brilliant", "delightful", "superb", "excellent", "moving",
    "charming", "gripping", "hilarious", "beautiful", "stunning", "fantastic", "great",
    "enjoyable", "heartfelt", "clever", "fresh", "masterful", "touching", "memorable", "fun",
    "thrilling", "inspired", "gorgeous", "powerful", "witty", "captivating", "terrific", "lovely",
]
NEGATIVE = [
    "awful", "terrible", "boring", "dull", "tedious", "horrible", "bland", "clumsy",
    "predictable", "disappointing", "mediocre", "painful", "forgettable", "messy", "lifeless",
    "weak", "confusing", "overlong", "shallow", "lazy", "dreadful", "flat", "pointless", "silly",
    "annoying", "unwatchable", "stale", "wooden", "cheap", "sloppy",
]
INTENSIFIERS = ["really", "truly", "so", "very", "incredibly", "absolutely", "quite", "genuinely"]
POSITIVE_VERBS = [
    "I loved it", "I enjoyed every minute", "I would watch it again", "I laughed all the way through",
    "it kept me on the edge of my seat", "I recommend it to everyone", "it made my week",
    "I was hooked from the start", "it left me smiling", "worth every penny",
]
NEGATIVE_VERBS = [
    "I hated it", "I regret watching it", "I walked out halfway", "it was a waste of time",
    "I fell asleep", "I want my money back", "I would not recommend it", "it made me cringe",
    "I kept checking my watch", "never again",
]
OPENERS = ["", "", "", "Honestly, ", "Well, ", "To be fair, ", "Overall, ", "In short, ",
           "Wow. ", "Hmm, "]
NOUNS = ["film", "movie", "story", "experience", "performance", "evening at the cinema"]


def sentence(rng, label):
    good, bad = (POSITIVE, NEGATIVE) if label == "positive" else (NEGATIVE, POSITIVE)
    verbs = POSITIVE_VERBS if label == "positive" else NEGATIVE_VERBS
    subj = rng.choice(SUBJECTS)
    kind = rng.randrange(8)
    if kind == 0:
        s = f"{subj} was {rng.choice(good)}."
    elif kind == 1:
        s = f"{subj} is {rng.choice(INTENSIFIERS)} {rng.choice(good)}!"
    elif kind == 2:
        s = f"I found {subj} {rng.choice(good)}, {rng.choice(verbs)}."
    elif kind == 3:
        s = f"What a {rng.choice(good)} {rng.choice(NOUNS)}."
    elif kind == 4:  # negation of the opposite
        s = f"{subj} was not {rng.choice(bad)} at all."
    elif kind == 5:  # contrast: the clause after "but" decides
        other = rng.choice([x for x in SUBJECTS if x != subj])
        s = f"{other} was {rng.choice(bad)}, but {subj} was {rng.choice(good)}."
    elif kind == 6:
        s = f"{rng.choice(verbs).capitalize()}. {subj} was {rng.choice(INTENSIFIERS)} {rng.choice(good)}."
    else:
        s = f"{rng.choice(good).capitalize()} {rng.choice(NOUNS)}; {rng.choice(verbs)}!"
    opener = rng.choice(OPENERS)
    if opener and not s.startswith("I "):
        s = s[0].lower() + s[1:]
    s = opener + s
    return s[0].upper() + s[1:]


def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(REPO, "examples", "data", "sentiment.tsv")
    rng = random.Random(20261130)
    rows, seen = [], set()
    while len(rows) < 2400:
        label = rng.choice(["positive", "negative"])
        text = sentence(rng, label)
        if text in seen:
            continue
        seen.add(text)
        rows.append((label, text))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write("# Sentiment corpus of the `sentiment` example. Source: assembled by\n")
        f.write("# scripts/make_sentiment_corpus.py from phrase lists written for this example.\n")
        f.write("# split\tlabel\ttext\n")
        for i, (label, text) in enumerate(rows):
            split = "test" if i % 5 == 4 else "train"
            f.write(f"{split}\t{label}\t{text}\n")
    print(f"wrote {len(rows)} sentences to {out}")


if __name__ == "__main__":
    main(sys.argv)
