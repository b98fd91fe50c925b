#!/usr/bin/env python3
"""Generate the datasets PEFT Lab ships (sentiment and topic).

Every sentence is composed here from hand-written templates and vocabulary;
nothing is copied from a public dataset. The output is deterministic (fixed
seeds, standard library only), so anyone can regenerate byte-identical files:

    python workers/data/build_datasets.py            # writes into workers/data
    python workers/data/build_datasets.py --out DIR  # writes into DIR

For each task it writes DIR/<task>/train.csv, DIR/<task>/val.csv (columns
``text,label``, UTF-8, ``\\n`` line endings) and DIR/<task>/task.json.

The sentiment task is built so that a keyword lookup is not enough: many
sentences use negation ("The soup was not bland at all."), contrast ("The
trailer looked great, but the film was a mess."), or negation words that do
not flip the meaning ("The service couldn't have been better."), and both
labels occur among negated and contrasted sentences.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent

SENTIMENT_SEED = 20240611
TOPIC_SEED = 20240612

POS, NEG = "positive", "negative"


def other(pol: str) -> str:
    return NEG if pol == POS else POS


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


# ---------------------------------------------------------------------------
# Sentiment vocabulary
# ---------------------------------------------------------------------------

# Adjective groups: (positive adjectives, negative adjectives). No adjective
# appears with both polarities, so each sentence has one intended label.
ADJ = {
    "general": (
        [
            "great",
            "excellent",
            "wonderful",
            "fantastic",
            "superb",
            "outstanding",
            "impressive",
            "lovely",
            "delightful",
            "terrific",
        ],
        ["awful", "terrible", "disappointing", "mediocre", "dreadful", "poor", "lousy", "underwhelming", "horrible"],
    ),
    "food": (
        ["delicious", "fresh", "flavorful", "perfectly cooked", "tasty", "rich"],
        ["bland", "stale", "greasy", "overcooked", "soggy", "lukewarm", "tasteless"],
    ),
    "service": (
        ["friendly", "attentive", "welcoming", "prompt", "helpful", "courteous"],
        ["rude", "slow", "careless", "dismissive", "unhelpful", "sloppy"],
    ),
    "story": (
        ["gripping", "clever", "moving", "original", "engaging", "thoughtful"],
        ["predictable", "confusing", "tedious", "dull", "clumsy", "boring", "pointless"],
    ),
    "acting": (
        ["convincing", "charming", "brilliant", "natural", "magnetic"],
        ["wooden", "flat", "unconvincing", "forgettable", "stiff"],
    ),
    "humor": (
        ["hilarious", "witty", "funny", "clever"],
        ["unfunny", "cringeworthy", "lame", "tired", "forced"],
    ),
    "visual": (
        ["stunning", "gorgeous", "sharp", "vivid", "beautiful"],
        ["dull", "blurry", "ugly", "murky", "washed out"],
    ),
    "sound": (
        ["crisp", "rich", "clear", "powerful", "warm"],
        ["muddy", "tinny", "harsh", "muffled", "weak"],
    ),
    "hardware": (
        ["sturdy", "reliable", "sleek", "solid", "well made"],
        ["flimsy", "unreliable", "fragile", "cheaply made", "wobbly"],
    ),
    "speed": (
        ["fast", "responsive", "smooth", "snappy"],
        ["sluggish", "laggy", "buggy", "glitchy", "slow"],
    ),
    "comfort": (
        ["comfortable", "spotless", "cozy", "spacious", "quiet"],
        ["cramped", "dirty", "noisy", "uncomfortable", "shabby"],
    ),
    "pace": (
        ["brisk", "tight", "well judged"],
        ["sluggish", "uneven", "plodding"],
    ),
}

# Intensifiers used with plain (non-negated) adjectives. Extreme adjectives
# ("superb", "awful") take different intensifiers from gradable ones ("fresh",
# "slow"); adjectives of several words take none.
GRADABLE_INTENSIFIERS = [
    "",
    "",
    "",
    "really ",
    "very ",
    "incredibly ",
    "remarkably ",
    "genuinely ",
    "surprisingly ",
    "quite ",
    "pretty ",
    "truly ",
]
EXTREME_INTENSIFIERS = ["", "", "", "truly ", "really ", "absolutely ", "simply "]
INTENSIFIERS = GRADABLE_INTENSIFIERS + EXTREME_INTENSIFIERS
EXTREME = {
    "great",
    "excellent",
    "wonderful",
    "fantastic",
    "superb",
    "outstanding",
    "delightful",
    "terrific",
    "awful",
    "terrible",
    "dreadful",
    "horrible",
    "brilliant",
    "stunning",
    "gorgeous",
    "hilarious",
    "delicious",
    "spotless",
    "pointless",
    "cringeworthy",
    "magnetic",
    "lousy",
}


def intensify(rng: random.Random, adj: str) -> str:
    """`adj` with a fitting intensifier in front (or none)."""
    if " " in adj:
        return adj
    pool = EXTREME_INTENSIFIERS if adj in EXTREME else GRADABLE_INTENSIFIERS
    return rng.choice(pool) + adj


# Each domain: items (the whole thing), aspects (parts of it), each given as
# (noun phrase, plural?, adjective group); the verb and noun for "I've never
# <verb> a <kind> this ..."; full verdict clauses; and "setup" clauses that
# open a contrast and are then overturned by the main clause.
DOMAINS = {
    "movie": {
        "items": [
            ("the film", False, "story"),
            ("the movie", False, "story"),
            ("this sequel", False, "story"),
            ("the documentary", False, "story"),
            ("the new thriller", False, "story"),
            ("this comedy", False, "humor"),
        ],
        "aspects": [
            ("the plot", False, "story"),
            ("the script", False, "story"),
            ("the ending", False, "story"),
            ("the dialogue", False, "story"),
            ("the acting", False, "acting"),
            ("the lead actor", False, "acting"),
            ("the supporting cast", False, "acting"),
            ("the soundtrack", False, "sound"),
            ("the score", False, "sound"),
            ("the special effects", True, "visual"),
            ("the cinematography", False, "visual"),
            ("the jokes", True, "humor"),
            ("the pacing", False, "pace"),
        ],
        "ever": ("seen", "film"),
        POS: [
            "I would happily watch it again",
            "I was hooked from start to finish",
            "the audience applauded at the end",
            "it stayed with me for days",
            "it is easily the best film I have seen this year",
            "I laughed the whole way through",
            "the ending is wonderful",
        ],
        NEG: [
            "I nearly walked out",
            "the film was a mess",
            "I kept checking my watch",
            "it felt twice as long as it was",
            "I want those two hours back",
            "I fell asleep halfway through",
            "the ending fell completely flat",
        ],
        "setup_" + POS: [
            "the trailer looked great",
            "the cast is packed with stars",
            "the opening scene is stunning",
            "the reviews were glowing",
            "the premise sounded brilliant",
            "the first half is promising",
        ],
        "setup_" + NEG: [
            "it starts slow",
            "the first act drags",
            "the critics were harsh",
            "the trailer looked cheap",
            "I almost skipped it",
            "the opening scene is confusing",
        ],
    },
    "restaurant": {
        "items": [
            ("the restaurant", False, "general"),
            ("this place", False, "general"),
            ("the bistro", False, "general"),
            ("the new taco spot", False, "general"),
            ("the cafe", False, "general"),
            ("the pizzeria", False, "general"),
        ],
        "aspects": [
            ("the pasta", False, "food"),
            ("the soup", False, "food"),
            ("the dessert", False, "food"),
            ("the steak", False, "food"),
            ("the fries", True, "food"),
            ("the dumplings", True, "food"),
            ("the coffee", False, "food"),
            ("the service", False, "service"),
            ("the waiters", True, "service"),
            ("our server", False, "service"),
            ("the atmosphere", False, "general"),
            ("the dining room", False, "comfort"),
        ],
        "ever": ("eaten at", "restaurant"),
        POS: [
            "we will definitely be back",
            "every bite was worth it",
            "I would recommend it to anyone",
            "we left full and happy",
            "it is worth every penny",
            "it has become our favorite spot",
        ],
        NEG: [
            "we left hungry and annoyed",
            "we waited an hour for cold food",
            "I would not go back",
            "the bill was outrageous for what we got",
            "I felt sick the next day",
            "it was a waste of money",
        ],
        "setup_" + POS: [
            "the menu looked promising",
            "the decor is gorgeous",
            "the prices are reasonable",
            "the reviews online were glowing",
            "the bread basket was lovely",
        ],
        "setup_" + NEG: [
            "the wait was long",
            "parking is a nightmare",
            "the place looks shabby from outside",
            "the menu is tiny",
            "the prices are steep",
        ],
    },
    "product": {
        "items": [
            ("the blender", False, "hardware"),
            ("these headphones", True, "sound"),
            ("the laptop", False, "speed"),
            ("the vacuum cleaner", False, "hardware"),
            ("this phone", False, "speed"),
            ("the smartwatch", False, "hardware"),
            ("the coffee maker", False, "hardware"),
        ],
        "aspects": [
            ("the battery life", False, "general"),
            ("the screen", False, "visual"),
            ("the sound quality", False, "sound"),
            ("the keyboard", False, "hardware"),
            ("the speakers", True, "sound"),
            ("the buttons", True, "hardware"),
            ("the build quality", False, "hardware"),
            ("the hinge", False, "hardware"),
            ("the camera", False, "visual"),
            ("the software", False, "speed"),
            ("the app", False, "speed"),
            ("the charger", False, "hardware"),
            ("the customer support", False, "service"),
        ],
        "ever": ("owned", "gadget"),
        POS: [
            "it works exactly as advertised",
            "I would buy it again in a heartbeat",
            "it has held up beautifully",
            "it was worth every penny",
            "it has made my mornings so much easier",
            "I use it every single day",
        ],
        NEG: [
            "it broke within a week",
            "I returned it the next day",
            "it stopped charging after a month",
            "it was a complete waste of money",
            "it died two days after the warranty ran out",
            "I regret buying it",
        ],
        "setup_" + POS: [
            "the box looked premium",
            "the specs sounded impressive",
            "it looks sleek",
            "setup took two minutes",
            "the price seemed fair",
        ],
        "setup_" + NEG: [
            "setup took forever",
            "the manual is confusing",
            "it is a bit pricey",
            "the packaging was damaged",
            "it looks a little plain",
        ],
    },
    "book": {
        "items": [
            ("the novel", False, "story"),
            ("this memoir", False, "story"),
            ("the book", False, "story"),
            ("the sequel", False, "story"),
            ("this thriller", False, "story"),
        ],
        "aspects": [
            ("the characters", True, "acting"),
            ("the prose", False, "general"),
            ("the ending", False, "story"),
            ("the first chapter", False, "story"),
            ("the plot twist", False, "story"),
            ("the dialogue", False, "story"),
            ("the world building", False, "story"),
            ("the translation", False, "general"),
        ],
        "ever": ("read", "book"),
        POS: [
            "I finished it in one sitting",
            "I could hardly put it down",
            "I have already ordered the sequel",
            "I keep recommending it to friends",
            "it made me cry in the best way",
        ],
        NEG: [
            "I gave up halfway through",
            "I had to force myself to finish it",
            "it is going straight to the donation box",
            "I skimmed the last hundred pages",
            "I would not read it again",
        ],
        "setup_" + POS: [
            "the cover is beautiful",
            "the premise is clever",
            "the author's last book was a favorite of mine",
            "the first page hooked me",
        ],
        "setup_" + NEG: [
            "the opening chapters are slow",
            "the cover is ugly",
            "the premise sounded silly",
            "it is very long",
        ],
    },
    "hotel": {
        "items": [
            ("the hotel", False, "comfort"),
            ("the resort", False, "general"),
            ("the guesthouse", False, "comfort"),
            ("the hostel", False, "comfort"),
        ],
        "aspects": [
            ("the room", False, "comfort"),
            ("the bed", False, "comfort"),
            ("the bathroom", False, "comfort"),
            ("the breakfast", False, "food"),
            ("the view", False, "visual"),
            ("the receptionist", False, "service"),
            ("the housekeeping", False, "service"),
            ("the pool", False, "general"),
            ("the wifi", False, "speed"),
        ],
        "ever": ("stayed at", "hotel"),
        POS: [
            "we would stay there again in a heartbeat",
            "it made our trip",
            "I slept better than at home",
            "we extended our stay by two nights",
        ],
        NEG: [
            "we checked out a day early",
            "I barely slept",
            "we will never stay there again",
            "it ruined our weekend",
            "I asked for a refund",
        ],
        "setup_" + POS: [
            "the lobby was stunning",
            "the location is perfect",
            "the photos online looked amazing",
            "the price was a bargain",
        ],
        "setup_" + NEG: [
            "check-in took ages",
            "the hallway smelled musty",
            "the location is a bit remote",
            "the elevator was out of order",
        ],
    },
}
DOMAIN_NAMES = list(DOMAINS)


def be(plural: bool, present: bool = False) -> str:
    if present:
        return "are" if plural else "is"
    return "were" if plural else "was"


def be_not(rng: random.Random, plural: bool, present: bool = False) -> str:
    verb = be(plural, present)
    return rng.choice([verb + " not", verb + "n't"])


def adjective(rng: random.Random, group: str, pol: str) -> str:
    """An adjective of the given polarity from the group, or from the general pool."""
    pos, neg = ADJ[group]
    gpos, gneg = ADJ["general"]
    pool = pos if pol == POS else neg
    if group != "general" and rng.random() < 0.3:
        pool = gpos if pol == POS else gneg
    return rng.choice(pool)


def pick_aspect(rng, dom, exclude=()):
    choices = [a for a in DOMAINS[dom]["aspects"] if a[0] not in exclude]
    return rng.choice(choices)


def plain_clause(rng, dom, pol, exclude=(), present=None):
    phrase, plural, group = pick_aspect(rng, dom, exclude)
    if present is None:
        present = rng.random() < 0.25
    adj = adjective(rng, group, pol)
    return f"{phrase} {be(plural, present)} {intensify(rng, adj)}", phrase


def negated_clause(rng, dom, pol, exclude=()):
    """A clause of polarity `pol` made by negating an adjective of the other polarity."""
    phrase, plural, group = pick_aspect(rng, dom, exclude)
    present = rng.random() < 0.25
    adj = adjective(rng, group, other(pol))
    neg = be_not(rng, plural, present)
    verb = be(plural, present)
    if pol == POS:  # negating a negative adjective
        forms = [
            f"{phrase} {neg} {adj} at all",
            f"{phrase} {neg} the least bit {adj}",
            f"{phrase} {neg} {adj}",
            f"{phrase} {verb} never {adj}",
            f"{phrase} {neg} even slightly {adj}",
        ]
    else:  # negating a positive adjective
        forms = [
            f"{phrase} {neg} {adj}",
            f"{phrase} {verb} not exactly {adj}",
            f"{phrase} {verb} never {adj}",
            f"{phrase} {neg} {adj} at all",
        ]
        if adj not in EXTREME and " " not in adj:
            forms += [f"{phrase} {neg} very {adj}", f"{phrase} {neg} particularly {adj}"]
    return rng.choice(forms), phrase


def verdict(rng, dom, pol):
    return rng.choice(DOMAINS[dom][pol])


def setup(rng, dom, pol):
    return rng.choice(DOMAINS[dom]["setup_" + pol])


def sentiment_plain(rng, dom, pol):
    d = DOMAINS[dom]
    kind = rng.randrange(9)
    if kind == 0:
        return cap(plain_clause(rng, dom, pol)[0]) + "."
    if kind == 1:
        opener = rng.choice(["Honestly", "Overall", "To be fair", "In short", "All in all"])
        return f"{opener}, {plain_clause(rng, dom, pol)[0]}."
    if kind == 2:
        present = rng.random() < 0.25
        first, phrase = plain_clause(rng, dom, pol, present=present)
        second, _ = plain_clause(rng, dom, pol, exclude=(phrase,), present=present)
        joiner = rng.choice([", and ", ", and even ", "; ", ", plus "])
        return cap(first) + joiner + second + "."
    if kind == 3:
        return cap(verdict(rng, dom, pol)) + "."
    if kind == 4:
        return cap(plain_clause(rng, dom, pol)[0]) + "; " + verdict(rng, dom, pol) + "."
    if kind == 5:
        phrase, plural, group = pick_aspect(rng, dom)
        verb = rng.choice(["found", "thought", "felt"])
        adj = intensify(rng, adjective(rng, group, pol))
        if verb == "found":
            return f"I found {phrase} {adj}."
        return f"I {verb} {phrase} {be(plural)} {adj}."
    if kind == 6:
        return f"Wow, {plain_clause(rng, dom, pol)[0]}!"
    if kind == 7:
        phrase, plural, group = rng.choice(d["items"])
        return cap(f"{phrase} {be(plural)} {intensify(rng, adjective(rng, group, pol))}.")
    # kind == 8: exclamation about the whole thing
    _, _, group = rng.choice(d["items"])
    adj = adjective(rng, group, pol)
    intens = "" if " " in adj else rng.choice(["", "", "truly ", "really "])
    noun = d["ever"][1]
    return f"What {article(intens or adj)} {intens}{adj} {noun}!"


NEG_FIXED = {
    POS: [
        "I can't recommend {item} enough.",
        "I can't complain about {aspect}.",
        "I couldn't find a single flaw in {aspect}.",
        "I have no complaints about {aspect}.",
        "I couldn't be happier with {item}.",
        "I didn't expect much, and {item} blew me away.",
        "There is nothing I would change about {aspect}.",
        "I never expected to love {item} this much.",
    ],
    NEG: [
        "I can't recommend {item}.",
        "I can't say I liked {item}.",
        "I can't say I enjoyed {aspect}.",
        "I didn't enjoy {item} one bit.",
        "I couldn't be more disappointed with {item}.",
        "I have nothing good to say about {aspect}.",
        "There is nothing I liked about {aspect}.",
        "I don't understand the hype around {item}.",
    ],
}


def sentiment_negation(rng, dom, pol):
    """A sentence of polarity `pol` that contains a negation word."""
    d = DOMAINS[dom]
    kind = rng.randrange(9)
    if kind in (0, 1):
        return cap(negated_clause(rng, dom, pol)[0]) + "."
    if kind == 2:
        phrase, plural, group = pick_aspect(rng, dom)
        adj = adjective(rng, group, other(pol))
        return rng.choice(
            [
                f"I wouldn't call {phrase} {adj}.",
                f"There was nothing {adj} about {phrase}.",
                f"Nobody could call {phrase} {adj}.",
                f"I wouldn't describe {phrase} as {adj}.",
            ]
        )
    if kind == 3:
        template = rng.choice(NEG_FIXED[pol])
        return template.format(item=rng.choice(d["items"])[0], aspect=pick_aspect(rng, dom)[0])
    # The remaining kinds contain a negation word that does NOT flip the meaning.
    if kind == 4:
        _, _, group = rng.choice(d["items"])
        verb, noun = d["ever"]
        adj = adjective(rng, group, pol)
        return rng.choice(
            [
                f"I don't think I've ever {verb} {article(noun)} {noun} this {adj}.",
                f"I have never {verb} {article(noun)} {noun} so {adj}.",
                f"Never have I {verb} {article(noun)} {noun} this {adj}.",
            ]
        )
    if kind == 5:
        phrase, plural, _ = pick_aspect(rng, dom)
        word = "better" if pol == POS else "worse"
        return cap(
            rng.choice(
                [
                    f"{phrase} couldn't have been {word}.",
                    f"{phrase} could not have been {word}.",
                    f"honestly, {phrase} couldn't have been any {word}.",
                ]
            )
        )
    if kind == 6:
        phrase, plural, group = pick_aspect(rng, dom)
        adj = adjective(rng, group, pol)
        return rng.choice(
            [
                f"I can't stop thinking about how {adj} {phrase} {be(plural)}.",
                f"I can't get over how {adj} {phrase} {be(plural)}.",
                f"I still can't believe how {adj} {phrase} {be(plural)}.",
            ]
        )
    if kind == 7:
        present = rng.random() < 0.25
        first, phrase = plain_clause(rng, dom, pol, present=present)
        second, _ = plain_clause(rng, dom, pol, exclude=(phrase,), present=present)
        # "Not only was X good, but Y was also good." (negation + "but", no flip)
        m = re.match(r"(.+?) (was|were|is|are) (.+)", first)
        subj, verb, rest = m.groups()
        m2 = re.match(r"(.+?) (was|were|is|are) (.+)", second)
        return f"Not only {verb} {subj} {rest}, but {m2.group(1)} {m2.group(2)} also {m2.group(3)}."
    # kind == 8: a negated clause followed by a verdict that agrees with it
    return cap(negated_clause(rng, dom, pol)[0]) + "; " + verdict(rng, dom, pol) + "."


def sentiment_contrast(rng, dom, pol):
    """Opening clause of the other polarity, overturned by a main clause of polarity `pol`."""
    r = rng.random()
    if r < 0.5:
        first, used = setup(rng, dom, other(pol)), ()
    elif r < 0.8:
        first, phrase = plain_clause(rng, dom, other(pol))
        used = (phrase,)
    else:
        first, phrase = negated_clause(rng, dom, other(pol))
        used = (phrase,)
    r = rng.random()
    if r < 0.4:
        main = plain_clause(rng, dom, pol, exclude=used)[0]
    elif r < 0.75:
        main = verdict(rng, dom, pol)
    else:
        main = negated_clause(rng, dom, pol, exclude=used)[0]
    kind = rng.randrange(8)
    if kind == 0:
        return f"{cap(first)}, but {main}."
    if kind == 1:
        return f"{cap(first)}, yet {main}."
    if kind == 2:
        return f"Although {first}, {main}."
    if kind == 3:
        return f"{cap(first)}; however, {main}."
    if kind == 4:
        return f"{cap(main)}, even though {first}."
    if kind == 5:
        return f"Sure, {first}, but {main}."
    if kind == 6:
        return f"{cap(first)}. Still, {main}."
    return f"{cap(first)}, but honestly {main}."


NORMALIZE_DROP = {w.strip() for w in INTENSIFIERS if w.strip()} | {
    "honestly",
    "wow",
    "overall",
    "even",
    "plus",
    "and",
    "still",
    "sure",
    "however",
    "but",
    "yet",
    "although",
    "though",
}


def sentiment_key(text: str) -> str:
    """Near-duplicate key: texts that differ only in intensifiers/connectives collide."""
    words = re.findall(r"[a-z']+", text.lower())
    return " ".join(w for w in words if w not in NORMALIZE_DROP)


def build_sentiment(rng: random.Random, per_label: int) -> dict[str, list[str]]:
    makers = [(sentiment_plain, 0.30), (sentiment_negation, 0.35), (sentiment_contrast, 0.35)]
    seen: set[str] = set()
    out: dict[str, list[str]] = {NEG: [], POS: []}
    attempts = 0
    while min(len(v) for v in out.values()) < per_label:
        attempts += 1
        if attempts > 200_000:
            raise RuntimeError("sentiment vocabulary too small for the requested size")
        # Alternate labels so both classes draw from the same mix of sentence kinds.
        pol = NEG if len(out[NEG]) <= len(out[POS]) else POS
        if len(out[pol]) >= per_label:
            pol = other(pol)
        dom = rng.choice(DOMAIN_NAMES)
        r, acc = rng.random(), 0.0
        for maker, weight in makers:  # noqa: B007 - the loop picks the maker used below
            acc += weight
            if r < acc:
                break
        text = maker(rng, dom, pol)
        key = sentiment_key(text)
        if key in seen:
            continue
        seen.add(key)
        out[pol].append(text)
    return out


# ---------------------------------------------------------------------------
# Topic vocabulary (all names are invented)
# ---------------------------------------------------------------------------

PEOPLE = [
    "Mara Okafor",
    "Jonas Lindqvist",
    "Priya Raman",
    "Diego Salcedo",
    "Hana Kobayashi",
    "Tomasz Wierzbicki",
    "Amara Nwosu",
    "Felix Duarte",
    "Lena Hartmann",
    "Kofi Mensah",
    "Sofia Marchetti",
    "Ines Carvalho",
    "Oskar Brandt",
    "Yuki Tanabe",
    "Ruth Adeyemi",
    "Mateo Ibarra",
]
CITIES = [
    "Riverton",
    "Port Ellis",
    "Northgate",
    "Cedar Falls",
    "Bayside",
    "Kingsbridge",
    "Ashford",
    "Millbrook",
    "Stonehaven",
    "Lakeshore",
]
TEAMS = [
    "the Riverton Hawks",
    "Port Ellis United",
    "the Northgate Rovers",
    "the Cedar Falls Comets",
    "the Bayside Mariners",
    "the Kingsbridge Lions",
    "the Ashford Wolves",
    "the Millbrook Rangers",
    "Stonehaven City",
    "the Lakeshore Pilots",
    "the Redcliff Bears",
    "Westmoor Athletic",
]
COMPANIES = [
    "Norvale Foods",
    "Brightwater Bank",
    "Kestrel Motors",
    "Halvorsen Shipping",
    "Pinecrest Retail",
    "Ardent Insurance",
    "Marlow Steel",
    "Sunfield Airlines",
    "Copperline Energy",
    "Oakhurst Pharmaceuticals",
    "Greyfield Logistics",
    "Tidewater Brewing",
]
TECHCOS = [
    "Quillsoft",
    "Lumenix",
    "Pixelforge",
    "Corvid Systems",
    "Nimbus Labs",
    "Tessellate",
    "Vantabyte",
    "Orrery Computing",
    "Hexwave",
    "Bramblenet",
]
ORDINALS = ["second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
RATES = ["2.5", "2.75", "3", "3.25", "3.5", "3.75", "4", "4.25", "4.5", "5"]


def team_start(team: str) -> str:
    return cap(team)


def possessive(name: str) -> str:
    return name + ("'" if name.endswith("s") else "'s")


def topic_sports(rng: random.Random) -> str:
    t1, t2 = rng.sample(TEAMS, 2)
    name = rng.choice(PEOPLE)
    a = rng.randint(1, 5)
    b = rng.randint(0, a - 1)
    kind = rng.randrange(15)
    cups = ["regional cup", "national cup", "league cup", "champions trophy"]
    events = [
        "the spring open",
        "the harbour classic",
        "the indoor masters",
        "the national championships",
        "the summer games",
        "the coastal cycling tour",
        "the city marathon",
    ]
    if kind == 0:
        return f"{team_start(t1)} beat {t2} {a}-{b} to reach the {rng.choice(cups)} final"
    if kind == 1:
        dist = rng.choice(
            [
                "100 metres",
                "marathon",
                "400-metre hurdles",
                "200-metre freestyle",
                "high jump",
                "1,500 metres",
                "pole vault",
            ]
        )
        return f"{name} sets a new {dist} record at {rng.choice(events)}"
    if kind == 2:
        pos = rng.choice(["striker", "goalkeeper", "point guard", "midfielder", "defender", "winger"])
        return f"{team_start(t1)} sign {pos} {name} on a {rng.randint(2, 5)}-year contract"
    if kind == 3:
        injury = rng.choice(["A knee injury", "A hamstring strain", "An ankle injury", "A shoulder injury"])
        return f"{injury} rules {name} out of {rng.choice(events)}"
    if kind == 4:
        return f"{team_start(t1)} coach {name} resigns after {rng.randint(4, 9)} straight defeats"
    if kind == 5:
        return f"{name} wins {rng.choice(events)} title in straight sets"
    if kind == 6:
        return f"Late {rng.choice(['goal', 'penalty', 'header', 'three-pointer'])} lifts {t1} past {t2}"
    if kind == 7:
        games = rng.choice(
            [
                "youth games",
                "world rowing championships",
                "indoor athletics finals",
                "continental swimming championships",
            ]
        )
        return f"{rng.choice(CITIES)} chosen to host the {rng.randint(2027, 2034)} {games}"
    if kind == 8:
        return f"{team_start(t1)} clinch the league title with {rng.randint(2, 5)} games to spare"
    if kind == 9:
        return f"{name} retires after {rng.randint(8, 17)} seasons with {t1}"
    if kind == 10:
        return f"{team_start(t1)} stun {t2} in {rng.choice(['overtime', 'extra-time', 'a penalty shootout'])}"
    if kind == 11:
        return f"{name} leads {t1} to a {rng.choice(ORDINALS)} straight win"
    if kind == 12:
        return (
            f"{rng.choice(['Rain', 'Fog', 'High wind', 'Lightning'])} delays the final round "
            f"of the {rng.choice(CITIES)} golf open"
        )
    if kind == 13:
        return f"Defending champion {name} crashes out of {rng.choice(events)} in the first round"
    return f"{team_start(t1)} fans celebrate promotion after {a}-{b} win over {t2}"


UNIVERSITIES = [
    "Halden University",
    "the Northbridge Institute",
    "Calloway College",
    "the Marlow Research Centre",
    "Eastbrook University",
]


def topic_science(rng: random.Random) -> str:
    kind = rng.randrange(15)
    name = rng.choice(PEOPLE)
    uni = rng.choice(UNIVERSITIES)
    places = [
        "the Andes",
        "a Borneo rainforest",
        "a remote cave system",
        "the deep Pacific",
        "an alpine lake",
        "the Atacama Desert",
        "a Madagascan forest",
    ]
    if kind == 0:
        creature = rng.choice(
            ["frog", "beetle", "orchid", "deep-sea fish", "bat", "moss", "gecko", "jellyfish", "spider"]
        )
        return f"Researchers discover a new species of {creature} in {rng.choice(places)}"
    if kind == 1:
        obj = rng.choice(
            ["a rocky planet", "a ring of dust", "a pair of gas giants", "a water-rich exoplanet", "a possible moon"]
        )
        star = rng.choice(["red dwarf", "sun-like star", "white dwarf", "binary star", "young star"])
        return f"Astronomers detect {obj} orbiting a nearby {star}"
    if kind == 2:
        if rng.random() < 0.5:
            factor = rng.choice(
                ["gut bacteria", "poor sleep", "air pollution", "daily walking", "loneliness", "a diet rich in fibre"]
            )
            outcome = rng.choice(
                ["memory decline", "longer lifespan", "heart disease", "mood swings", "weaker immunity"]
            )
        else:
            factor = rng.choice(["ocean warming", "soil fungi", "light at night", "pesticide use", "river damming"])
            outcome = rng.choice(
                ["coral loss", "crop yields", "bird migration timing", "insect decline", "fish populations"]
            )
        return f"New study links {factor} to {outcome}"
    if kind == 3:
        thing = rng.choice(
            [
                "the fruit fly brain",
                "the ocean floor near Iceland",
                "the human gut microbiome",
                "a glacier's hidden rivers",
                "the magnetic field of Mars",
                "the roots of an ancient forest",
            ]
        )
        return f"Scientists map {thing} in unprecedented detail"
    if kind == 4:
        beast = rng.choice(
            [
                "giant penguin",
                "feathered dinosaur",
                "early whale",
                "ancient crocodile",
                "armored fish",
                "flying reptile",
            ]
        )
        return f"Fossil of {article(beast)} {beast} unearthed in {rng.choice(places)}"
    if kind == 5:
        probe = rng.choice(["Halcyon probe", "Meridian orbiter", "Tern lander", "Kite space telescope"])
        body = rng.choice(
            [
                "an icy moon of Saturn",
                "a near-Earth asteroid",
                "a comet's nucleus",
                "the far side of the Moon",
                "the poles of Jupiter",
            ]
        )
        return f"The {probe} sends back first close-up images of {body}"
    if kind == 6:
        qty = rng.choice(
            [
                "the mass of the neutrino",
                "the proton's radius",
                "the gravitational constant",
                "the electron's magnetic moment",
                "the half-life of a rare isotope",
            ]
        )
        return f"Physicists at {uni} measure {qty} with record precision"
    if kind == 7:
        phen = rng.choice(
            [
                "faster ice melt",
                "longer droughts",
                "rising sea temperatures",
                "shrinking snowpack",
                "thawing permafrost",
            ]
        )
        region = rng.choice(
            ["the Arctic", "southern Europe", "the Himalayas", "West Antarctica", "the Sahel", "the Great Plains"]
        )
        return f"Climate scientists warn of {phen} in {region}"
    if kind == 8:
        tissue = rng.choice(
            ["miniature kidneys", "heart muscle", "retinal tissue", "tooth enamel", "working liver cells"]
        )
        return f"Team led by {name} grows {tissue} from stem cells"
    if kind == 9:
        animal = rng.choice(["bumblebees", "octopuses", "crows", "zebrafish", "honeybees", "rats", "goats"])
        ability = rng.choice(
            [
                "recognise individual faces",
                "count to five",
                "use simple tools",
                "sense magnetic fields",
                "learn by watching others",
                "tell left from right",
            ]
        )
        return f"Study finds {animal} can {ability}"
    if kind == 10:
        where = rng.choice(
            [
                "a dormant volcano in Iceland",
                "the Campi Flegrei caldera",
                "an island volcano in the Pacific",
                "a volcano near {city}",
            ]
        )
        return f"Volcanologists track rising magma beneath {where.format(city=rng.choice(CITIES))}"
    if kind == 11:
        insight = rng.choice(
            [
                "how early farmers spread across Europe",
                "the origins of domestic dogs",
                "a lost population of ice-age hunters",
                "when horses were first ridden",
            ]
        )
        return f"Ancient DNA reveals {insight}"
    if kind == 12:
        material = rng.choice(
            [
                "a self-healing concrete",
                "a biodegradable plastic made from seaweed",
                "a metal foam that floats",
                "a glass that bends without breaking",
            ]
        )
        return f"Chemists at {uni} develop {material}"
    if kind == 13:
        return (
            f"Machine learning helps astronomers find {rng.randint(12, 300)} new "
            f"{rng.choice(['exoplanets', 'pulsars', 'gravitational lenses', 'asteroids'])}"
        )
    trial = rng.choice(["malaria vaccine", "gene therapy for hearing loss", "new antibiotic", "nasal flu vaccine"])
    return f"Early trial of {article(trial)} {trial} shows promising results, researchers say"


def topic_business(rng: random.Random) -> str:
    kind = rng.randrange(15)
    company, company2 = rng.sample(COMPANIES + TECHCOS[:4], 2)
    name = rng.choice(PEOPLE)
    if kind == 0:
        move = rng.choice(["rise", "fall", "jump", "slide", "slump", "climb"])
        trigger = rng.choice(
            [
                "quarterly results",
                "a profit warning",
                "an upbeat forecast",
                "weak holiday sales",
                "a surprise dividend cut",
                "a takeover bid",
            ]
        )
        return f"{company} shares {move} {rng.randint(2, 19)}% after {trigger}"
    if kind == 1:
        return f"{company} to buy {company2} in ${rng.randint(2, 40)} billion deal"
    if kind == 2:
        rate = rng.choice(RATES)
        act = rng.choice(
            [f"holds interest rates at {rate}%", f"raises interest rates to {rate}%", f"cuts interest rates to {rate}%"]
        )
        return f"Central bank {act}"
    if kind == 3:
        return f"{company} to cut {rng.randint(2, 60) * 100:,} jobs as demand weakens"
    if kind == 4:
        return f"Inflation {rng.choice(['eases', 'rises', 'climbs', 'slows'])} to {rng.choice(RATES)}% in {rng.choice(MONTHS)}"
    if kind == 5:
        return f"{company} names {name} as chief executive"
    if kind == 6:
        if rng.random() < 0.5:
            move = rng.choice(["jump", "edge higher", "climb"])
            reason = rng.choice(
                [
                    "demand forecasts improve",
                    "shipping routes are disrupted",
                    "producers agree to cut output",
                    "stockpiles shrink",
                ]
            )
        else:
            move = rng.choice(["slide", "tumble", "edge lower"])
            reason = rng.choice(
                ["supply talks stall", "stockpiles grow", "demand forecasts are cut", "producers raise output"]
            )
        return f"Oil prices {move} as {reason}"
    if kind == 7:
        return f"Retail sales {rng.choice(['rise', 'fall'])} for the {rng.choice(ORDINALS)} month in a row"
    if kind == 8:
        return f"{company} posts record {rng.choice(['quarterly', 'annual', 'half-year'])} profit"
    if kind == 9:
        region = rng.choice(["the north", "the coast", "three new countries", "the capital region"])
        return f"{company} opens {rng.randint(5, 80)} new stores across {region}"
    if kind == 10:
        return (
            f"Home prices in {rng.choice(CITIES)} {rng.choice(['fall', 'rise'])} "
            f"for the {rng.choice(ORDINALS)} straight month"
        )
    if kind == 11:
        return f"Unemployment {rng.choice(['falls', 'rises', 'holds steady'])} at {rng.choice(RATES)}% in {rng.choice(MONTHS)}"
    if kind == 12:
        return f"{company} shareholders reject proposed merger with {company2}"
    if kind == 13:
        return f"{company} raises ${rng.randint(50, 900)} million in its stock market debut"
    return (
        f"Small businesses in {rng.choice(CITIES)} struggle with "
        f"{rng.choice(['rising rents', 'higher energy bills', 'late payments', 'staff shortages'])}"
    )


def topic_technology(rng: random.Random) -> str:
    kind = rng.randrange(15)
    co = rng.choice(TECHCOS)
    devices = [
        "a foldable phone",
        "a lightweight laptop",
        "new wireless earbuds",
        "a smart thermostat",
        "an e-reader",
        "a mixed-reality headset",
        "a budget tablet",
    ]
    features = [
        "end-to-end encrypted backups",
        "an offline mode",
        "live transcription",
        "passkey sign-in",
        "a dark mode",
        "group video calls",
        "on-device translation",
    ]
    apps = [
        "the Chirp messaging app",
        "Pathfinder Maps",
        "the Notely app",
        "the Driftbox cloud service",
        "the Palette photo editor",
    ]
    if kind == 0:
        feat = rng.choice(
            [
                "a week-long battery",
                "an under-display camera",
                "satellite messaging",
                "a built-in AI assistant",
                "a 120Hz screen",
                "a repairable design",
            ]
        )
        return f"{co} unveils {rng.choice(devices)} with {feat}"
    if kind == 1:
        return f"Update to {rng.choice(apps)} adds {rng.choice(features)}"
    if kind == 2:
        sw = rng.choice(
            [
                "popular router firmware",
                "a widely used web server",
                "the Wavelink browser",
                "smart door locks",
                "an open-source logging library",
                "office printers",
            ]
        )
        return f"Security researchers find critical flaw in {sw}"
    if kind == 3:
        tool = rng.choice(
            ["code editor", "database engine", "translation model", "compiler toolkit", "password manager"]
        )
        return f"{co} releases its {tool} as open source"
    if kind == 4:
        task = rng.choice(["image processing", "AI inference", "video encoding", "data compression"])
        return f"New chip promises {rng.randint(2, 9)}x faster {task}"
    if kind == 5:
        return f"{co} rolls out {rng.choice(features)} to all users"
    if kind == 6:
        service = rng.choice(apps + ["a major payment network", "several popular websites"])
        return f"Outage knocks {service} offline for {rng.randint(2, 11)} hours"
    if kind == 7:
        return f"{co} patches {rng.randint(6, 90)} security vulnerabilities in monthly update"
    if kind == 8:
        plat = rng.choice(["operating system", "AR toolkit", "programming language", "smart home platform"])
        return f"Developers get early access to {possessive(co)} new {plat}"
    if kind == 9:
        robot = rng.choice(["a robot", "a drone", "a robotic arm"])
        ability = rng.choice(
            ["fold laundry", "inspect wind turbines", "sort recycling", "deliver groceries", "map collapsed buildings"]
        )
        return f"Startup builds {robot} that can {ability}"
    if kind == 10:
        dev = rng.choice(["smartphones", "tablets", "smart speakers", "laptops", "smart TVs"])
        return f"{co} ends software support for older {dev}"
    if kind == 11:
        thing = rng.choice(
            ["third-party cookies", "outdated encryption", "password-only logins", "autoplaying video ads"]
        )
        return f"Browser makers agree to phase out {thing}"
    if kind == 12:
        return f"{co} adds {rng.choice(features)} to its {rng.choice(['smartwatch', 'laptops', 'phones', 'email app'])}"
    if kind == 13:
        data = rng.choice(["passwords", "customer emails", "payment details", "login tokens"])
        hole = rng.choice(["a browser extension", "a fake app update", "an unpatched VPN", "a rogue plugin"])
        return f"Hackers use {hole} to steal {data}"
    return f"Review: {possessive(co)} {rng.choice(devices).split(' ', 1)[1]} gets battery life right"


TOPIC_MAKERS = {
    "sports": topic_sports,
    "science": topic_science,
    "business": topic_business,
    "technology": topic_technology,
}


def topic_key(text: str) -> str:
    """Near-duplicate key: headlines that differ only in numbers collide."""
    return re.sub(r"[\d.,%$]+", "#", text.lower())


def build_topic(rng: random.Random, per_label: int) -> dict[str, list[str]]:
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for label, maker in TOPIC_MAKERS.items():
        out[label] = []
        attempts = 0
        while len(out[label]) < per_label:
            attempts += 1
            if attempts > 100_000:
                raise RuntimeError(f"topic vocabulary too small for {label!r}")
            text = maker(rng)
            key = topic_key(text)
            if key in seen:
                continue
            seen.add(key)
            out[label].append(text)
    return out


# ---------------------------------------------------------------------------
# Splitting and writing
# ---------------------------------------------------------------------------

TASKS = {
    "sentiment": {
        "meta": {
            "name": "sentiment",
            "title": "Review sentiment",
            "description": (
                "Short reviews of films, books, restaurants, hotels and gadgets, labelled positive "
                'or negative. Many use negation ("not bad at all") or contrast ("the trailer looked '
                'great, but the film was a mess"), so single keywords are not enough.'
            ),
            "labels": [NEG, POS],
        },
        "seed": SENTIMENT_SEED,
        "build": build_sentiment,
        "train_per_label": 400,
        "val_per_label": 100,
    },
    "topic": {
        "meta": {
            "name": "topic",
            "title": "News topic",
            "description": ("Short news headlines from four sections: sports, science, business and technology."),
            "labels": ["sports", "science", "business", "technology"],
        },
        "seed": TOPIC_SEED,
        "build": build_topic,
        "train_per_label": 150,
        "val_per_label": 40,
    },
}


def split(
    rng: random.Random, by_label: dict[str, list[str]], labels: list[str], n_train: int, n_val: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    train, val = [], []
    for label in labels:
        texts = list(by_label[label])
        rng.shuffle(texts)
        val += [(t, label) for t in texts[:n_val]]
        train += [(t, label) for t in texts[n_val : n_val + n_train]]
    rng.shuffle(train)
    rng.shuffle(val)
    return train, val


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def build(out: Path) -> dict[str, dict[str, int]]:
    sizes = {}
    for name, spec in TASKS.items():
        rng = random.Random(spec["seed"])
        labels = spec["meta"]["labels"]
        n_train, n_val = spec["train_per_label"], spec["val_per_label"]
        by_label = spec["build"](rng, n_train + n_val)
        train, val = split(rng, by_label, labels, n_train, n_val)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        write_csv(folder / "train.csv", train)
        write_csv(folder / "val.csv", val)
        (folder / "task.json").write_text(
            json.dumps(spec["meta"], indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        sizes[name] = {"train": len(train), "val": len(val)}
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"folder to write <task>/ subfolders into (default: {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    for name, size in build(args.out).items():
        print(f"{name}: {size['train']} train, {size['val']} val -> {args.out / name}")


if __name__ == "__main__":
    main()
