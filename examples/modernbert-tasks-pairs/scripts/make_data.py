"""Write the package's data files from hand-written phrases (run once; the output is committed).

    python scripts/make_data.py            # from examples/modernbert-tasks-pairs/

Every sentence is built from the phrase lists below, so the files are small, free of scraped
text, and reproducible: the same seed always gives the same rows. Each task's label depends on
how its two sentences relate, which is what the task teaches a model to read.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "src" / "modernbert_tasks_pairs" / "data"
SIZES = {"train": 480, "validation": 120}

# --- paraphrase: news-like events, reworded or changed -------------------------------------
# (phrase, synonym): a paraphrase may use either
SUBJECTS = [
    ("the company", "the firm"),
    ("the city council", "the council"),
    ("the government", "the ministry"),
    ("the team", "the squad"),
    ("the university", "the college"),
    ("the bank", "the lender"),
    ("the museum", "the gallery"),
    ("the hospital", "the clinic"),
    ("the airline", "the carrier"),
    ("the school board", "the board"),
]
# what an organisation does, and to what: (active, synonym, passive of the synonym), objects
DEEDS = {
    "decision": (
        [
            ("approved", "endorsed", "endorsed"),
            ("cancelled", "scrapped", "scrapped"),
            ("delayed", "postponed", "postponed"),
            ("announced", "unveiled", "unveiled"),
            ("rejected", "turned down", "turned down"),
        ],
        [
            "the new plan",
            "the budget",
            "the contract",
            "the merger",
            "the stadium deal",
            "the training program",
        ],
    ),
    "property": (
        [
            ("bought", "purchased", "purchased"),
            ("opened", "opened", "opened"),
            ("closed", "shut", "shut"),
            ("expanded", "enlarged", "enlarged"),
            ("sold", "sold off", "sold off"),
            ("renovated", "refurbished", "refurbished"),
        ],
        [
            "the old building",
            "the branch office",
            "the research center",
            "the warehouse",
            "the parking garage",
        ],
    ),
}
TIMES = [
    ("on monday", "monday"),
    ("on friday", "friday"),
    ("last week", "last week"),
    ("in march", "in march"),
    ("this morning", "early today"),
    ("in june", "in june"),
    ("on tuesday", "tuesday"),
    ("last year", "a year ago"),
]


def _event_sentence(
    rng: random.Random, subject: tuple, verb: tuple, obj: str, when: tuple, reword: bool
) -> str:
    if not reword:
        return f"{subject[0]} {verb[0]} {obj} {when[0]} ."
    s, t = rng.choice(subject), rng.choice(when)
    form = rng.randrange(3)
    if form == 0:
        return f"{s} {rng.choice(verb[:2])} {obj} {t} ."
    if form == 1:
        return f"{t} , {s} {rng.choice(verb[:2])} {obj} ."
    return f"{obj} was {verb[2]} by {s} {t} ."


def paraphrase_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        verbs, objects = DEEDS[rng.choice(sorted(DEEDS))]
        options = [SUBJECTS, verbs, objects, TIMES]  # who, did what, to what, when
        facts = [rng.choice(o) for o in options]
        s1 = _event_sentence(rng, *facts, reword=False)
        label = i % 2  # balanced: 0 not_paraphrase, 1 paraphrase
        if not label:  # change one or two of the facts
            for k in rng.sample(range(4), rng.choice((1, 1, 2))):
                facts[k] = rng.choice([x for x in options[k] if x != facts[k]])
        rows.append({"sentence1": s1, "sentence2": _event_sentence(rng, *facts, reword=True), "label": label})
    rng.shuffle(rows)
    return rows


# --- nli: scenes, and a statement about each -----------------------------------------------
# (premise phrase, general phrase, pronoun)
PEOPLE = [
    ("a young woman", "a woman", "she"),
    ("an old man", "a man", "he"),
    ("a little girl", "a girl", "she"),
    ("a teenage boy", "a boy", "he"),
    ("a tall man", "a man", "he"),
    ("an elderly woman", "a woman", "she"),
]
# (premise phrase, general phrase, incompatible place)
PLACES = [
    ("in the park", "outdoors", "inside a house"),
    ("in a small kitchen", "indoors", "on a mountain"),
    ("on the beach", "near the sea", "in an office"),
    ("in the library", "indoors", "in a forest"),
    ("on a busy street", "in a city", "in the desert"),
]
PARK, KITCHEN, BEACH, LIBRARY, STREET = range(len(PLACES))
# (premise phrase, general phrase, incompatible activity, places where it makes sense)
ACTIVITIES = [
    ("playing the violin", "playing an instrument", "sleeping", (PARK, BEACH, STREET)),
    ("playing the guitar", "making music", "swimming", (PARK, KITCHEN, BEACH, STREET)),
    ("riding a bicycle", "riding a bike", "sitting still", (PARK, BEACH, STREET)),
    ("cooking pasta", "making food", "sleeping", (KITCHEN, BEACH)),
    ("reading a novel", "reading a book", "dancing", (PARK, KITCHEN, BEACH, LIBRARY, STREET)),
    ("painting a fence", "painting", "watching television", (PARK, BEACH, STREET)),
    ("walking a dog", "walking an animal", "driving a car", (PARK, BEACH, STREET)),
    ("eating a sandwich", "having lunch", "running a race", (PARK, KITCHEN, BEACH, STREET)),
]
PURPOSES = [
    "for a competition",
    "to earn some money",
    "for the first time",
    "because {pronoun} is bored",
    "with {possessive} best friend",
    "to impress a stranger",
    "before going to work",
    "after a long day",
]
POSSESSIVE = {"she": "her", "he": "his"}
NLI_LABELS = ("entailment", "neutral", "contradiction")


def _hypothesis(rng: random.Random, label: str, who: tuple, act: tuple, where: tuple) -> str:
    person, general, pronoun = who
    if label == "entailment":
        return rng.choice(
            [
                f"{general} is {act[1]} .",
                f"{general} is {act[0]} .",
                f"{general} is {where[1]} .",
                f"someone is {act[1]} {where[1]} .",
            ]
        )
    if label == "neutral":
        purpose = rng.choice(PURPOSES).format(pronoun=pronoun, possessive=POSSESSIVE[pronoun])
        return rng.choice([f"{general} is {act[0]} {purpose} .", f"{person} is {act[1]} {purpose} ."])
    return rng.choice(
        [
            f"{general} is {act[2]} .",
            f"nobody is {act[1]} .",
            f"{general} is {act[0]} {where[2]} .",
            f"{person} is not {act[1]} .",
        ]
    )


def nli_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        who, act = rng.choice(PEOPLE), rng.choice(ACTIVITIES)
        where = PLACES[rng.choice(act[3])]
        label = NLI_LABELS[i % 3]
        rows.append(
            {
                "premise": f"{who[0]} is {act[0]} {where[0]} .",
                "hypothesis": _hypothesis(rng, label, who, act, where),
                "label": label,
            }
        )
    rng.shuffle(rows)
    return rows


# --- similarity: how much two scene descriptions share, 0..5 --------------------------------
TOPICS = {  # topic: (people, actions, things), four of each
    "kitchen": (
        ["a chef", "a cook", "my grandmother", "the waiter"],
        ["is chopping", "is frying", "is washing", "is tasting"],
        ["onions", "vegetables", "a fish", "the mushrooms"],
    ),
    "sport": (
        ["a goalkeeper", "a striker", "the coach", "a referee"],
        ["is kicking", "is catching", "is throwing", "is carrying"],
        ["the ball", "a frisbee", "a javelin", "the net"],
    ),
    "music": (
        ["a pianist", "a drummer", "the singer", "a violinist"],
        ["is tuning", "is repairing", "is cleaning", "is packing"],
        ["a piano", "the drums", "a microphone", "a cello"],
    ),
    "farm": (
        ["a farmer", "a shepherd", "the vet", "a young boy"],
        ["is feeding", "is brushing", "is counting", "is chasing"],
        ["the sheep", "a horse", "the chickens", "the goats"],
    ),
}
WHERE = {
    "kitchen": ["at home", "in a restaurant"],
    "sport": ["on the field", "in a stadium"],
    "music": ["on stage", "in a studio"],
    "farm": ["in the barn", "in a meadow"],
}
SIZES_OF_PARTS = (4, 4, 4, 2)  # who, does, what, where


def _scene(topic: str, who: int, does: int, what: int, where: int) -> str:
    people, verbs, things = TOPICS[topic]
    return f"{people[who]} {verbs[does]} {things[what]} {WHERE[topic][where]} ."


def similarity_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    topics = sorted(TOPICS)
    for _ in range(n):
        topic = rng.choice(topics)
        a = [rng.randrange(size) for size in SIZES_OF_PARTS]
        # how many of the four parts the second sentence changes: 0 changes -> score 5
        changed = rng.randrange(5)
        b = list(a)
        for k in rng.sample(range(4), changed):
            b[k] = rng.choice([x for x in range(SIZES_OF_PARTS[k]) if x != a[k]])
        score = 5.0 - 1.2 * changed
        other = topic
        if rng.random() < 0.2:  # a different topic entirely: nothing in common
            other = rng.choice([t for t in topics if t != topic])
            score = 0.0
        # graders disagree a little: jitter the score, keep it in 0..5
        score = min(5.0, max(0.0, score + rng.choice((-0.2, 0.0, 0.0, 0.2))))
        rows.append(
            {"sentence1": _scene(topic, *a), "sentence2": _scene(other, *b), "score": round(score, 1)}
        )
    return rows


# --- writing --------------------------------------------------------------------------------
def write(task: str, split: str, rows: list[dict], fmt: str) -> None:
    folder = DATA / task
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.{fmt}"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            fh.writelines(json.dumps(r) + "\n" for r in rows)
            return
        delimiter = "\t" if fmt == "tsv" else ","
        # TSV without quoting (the library reads TSV with QUOTE_NONE, like GLUE); no row
        # contains a tab, and CSV quotes as needed.
        writer = csv.DictWriter(
            fh,
            fieldnames=list(rows[0]),
            delimiter=delimiter,
            quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
        )
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    makers = {
        "pairs-paraphrase": (paraphrase_rows, "tsv"),
        "pairs-nli": (nli_rows, "jsonl"),
        "pairs-sts": (similarity_rows, "csv"),
    }
    for seed, (task, (make, fmt)) in enumerate(makers.items()):
        rng = random.Random(seed)
        seen: set[tuple] = set()
        for split, size in SIZES.items():
            # no pair twice, and validation holds only pairs that training never shows
            rows = []
            for row in make(4 * size, rng):
                if _pair(row) not in seen and len(rows) < size:
                    seen.add(_pair(row))
                    rows.append(row)
            write(task, split, rows, fmt)


def _pair(row: dict) -> tuple:
    return tuple(v for k, v in row.items() if k not in ("label", "score"))


if __name__ == "__main__":
    main()
