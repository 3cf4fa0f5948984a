"""A small generated "world" and a corpus about it, with known analogies.

The world has countries (each with a capital, a currency and a language), gendered word pairs,
nouns with plurals and verbs with past tenses. Sentences put every word in contexts that carry its
*entity* (words private to one country, family role, noun or verb) and its *role* (capital city,
currency, language; he/she; one/many; today/yesterday), so a good embedding learns
``vec(paris) - vec(france) + vec(japan) ~ vec(tokyo)`` and the rest of the analogy file written by
:func:`write_analogies` (questions-words format, 6 sections, 2,376 questions).

No download is needed, so ``embeddings-jax word2vec`` runs anywhere in seconds.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np


def _word_tuples(block: str) -> list[tuple[str, ...]]:
    """``[("japan", "tokyo", ...), ...]`` from comma-separated groups of space-separated words."""
    return [tuple(group.split()) for group in block.split(",")]


# country, capital, currency, language
COUNTRIES = _word_tuples("""
japan tokyo yen japanese, china beijing yuan chinese, india delhi rupee hindi,
russia moscow ruble russian, brazil brasilia real portuguese, korea seoul won korean,
france paris franc french, germany berlin mark german, italy rome lira italian,
spain madrid peseta spanish, greece athens drachma greek, poland warsaw zloty polish,
sweden stockholm krona swedish, denmark copenhagen krone danish, hungary budapest forint hungarian,
thailand bangkok baht thai, vietnam hanoi dong vietnamese, israel jerusalem shekel hebrew,
iran tehran rial persian, ukraine kiev hryvnia ukrainian, romania bucharest leu romanian,
bulgaria sofia lev bulgarian, norway oslo kroner norwegian, finland helsinki markka finnish
""")
GENDER_PAIRS = _word_tuples("""
king queen, prince princess, boy girl, father mother, son daughter, brother sister, uncle aunt,
husband wife, nephew niece, grandfather grandmother, actor actress, waiter waitress, hero heroine,
lord lady, monk nun, groom bride
""")
NOUNS = ["apple", "car", "dog", "house", "tree", "river", "book", "bird", "horse", "ship",
         "stone", "cloud", "flower", "chair", "door", "road"]  # fmt: skip
VERBS = _word_tuples("""
go went, eat ate, see saw, run ran, swim swam, write wrote, sing sang, drink drank, take took,
give gave, ride rode, fly flew, grow grew, drive drove, know knew, buy bought
""")


def _phrase_table(block: str) -> dict[str, list[str]]:
    """``{key: [phrases]}`` from lines ``key: phrase | phrase ...``; an indented line continues
    the key above it."""
    table: dict[str, list[str]] = {}
    for line in block.strip("\n").splitlines():
        if not line.startswith(" "):
            key, _, line = line.partition(":")
            table[key] = []
        table[key] += [p.strip() for p in line.split("|") if p.strip()]
    return table


# Role phrases: "{}" is the word, "{t}" an entity word.
_ROLES = _phrase_table("""
country: the nation of {} is near {t} | {} is a country with {t} | travel to {} to see {t}
    | the people of {} love {t} | the border of {} runs past {t}
capital: the city of {} has {t} | {} is the capital near {t} | the mayor of {} visited {t}
    | streets of {} lead to {t} | downtown {} has a {t}
currency: they pay in {} for {t} | the {} exchange rate fell at {t} | coins of {} buy {t}
    | prices in {} rose for {t} | the bank prints {} near {t}
language: they speak {} at {t} | the {} language names the {t} | a {} dialect from {t}
    | words in {} describe {t} | she translated {} poems about {t}
male: he is the {} of {t} | the {} said his {t} | his {} was a man of {t} | the old {} and his {t}
    | him and the {} at {t}
female: she is the {} of {t} | the {} said her {t} | her {} was a woman of {t}
    | the old {} and her {t} | her and the {} at {t}
singular: one {} near the {t} | a single {} by the {t} | this {} is {t}
    | that lonely {} has one {t} | an old {} and a {t}
plural: many {} near the {t} | two {} by the {t} | these {} are {t} | several {} have some {t}
    | all the {} and the {t}
present: today i {} to the {t} | they {} every day with {t} | we will {} near {t}
    | now you {} the {t} | i often {} by the {t}
past: yesterday i {} to the {t} | they {} last year with {t} | we {} before near {t}
    | long ago you {} the {t} | i once {} by the {t}
""")
# Sentences that tie members of one entity together.
_LINKS = _phrase_table("""
country: {capital} is the capital of {country} | in {country} they speak {language}
    | {country} uses the {currency} | {language} is spoken in {capital}
    | the {currency} is the money of {country}
gender: the {male} and the {female} of {t} | the {female} met the {male}
number: one {singular} or many {plural} | the {plural} and the {singular}
tense: i {present} now but i {past} then | they {past} and will {present}
""")

_SYLLABLES = ["ka", "lo", "mi", "ta", "ru", "ne", "so", "vi", "da", "pe", "zu", "ri", "mo", "ga",
              "te", "bu", "li", "ho", "fa", "ki", "nu", "sa", "do", "we"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class World:
    """Entities of the generated world; each has a few private "topic" words."""

    countries: list[tuple[str, str, str, str]]
    gender_pairs: list[tuple[str, str]]
    plurals: list[tuple[str, str]]
    tenses: list[tuple[str, str]]
    topics: dict[str, list[str]]  # entity key -> topic words


def make_world(seed: int = 0, topics_per_entity: int = 3) -> World:
    """The fixed word lists with freshly generated pseudo-word topics (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    used: set[str] = set()

    def pseudo_word() -> str:
        while True:
            w = "".join(rng.choice(_SYLLABLES, size=3))
            if w not in used:
                used.add(w)
                return w

    plurals = [(n, n + "s") for n in NOUNS]
    keys = [c[0] for c in COUNTRIES] + [m for m, _ in GENDER_PAIRS] + NOUNS + [v for v, _ in VERBS]
    topics = {k: [pseudo_word() for _ in range(topics_per_entity)] for k in keys}
    return World(list(COUNTRIES), list(GENDER_PAIRS), plurals, list(VERBS), topics)


def generate_corpus(world: World, n_sentences: int = 20_000, seed: int = 0) -> list[list[str]]:
    """``n_sentences`` tokenised sentences about random entities of ``world``."""
    if n_sentences < 1:
        raise ValueError(f"n_sentences must be >= 1, got {n_sentences}")
    rng = np.random.default_rng(seed)
    # (entity key, {role: word}, link templates)
    entities = (
        [(c[0], dict(zip(("country", "capital", "currency", "language"), c)), "country")
         for c in world.countries]
        + [(m, {"male": m, "female": f}, "gender") for m, f in world.gender_pairs]
        + [(s, {"singular": s, "plural": p}, "number") for s, p in world.plurals]
        + [(v, {"present": v, "past": p}, "tense") for v, p in world.tenses]
    )  # fmt: skip
    # Every word gets about the same number of mentions: entities are drawn by their word count.
    weights = np.array([len(roles) for _, roles, _ in entities], np.float64)
    picks = rng.choice(len(entities), size=n_sentences, p=weights / weights.sum())
    sentences = []
    for e in picks:
        key, roles, kind = entities[e]
        t = world.topics[key][rng.integers(len(world.topics[key]))]
        if rng.random() < 0.2:
            text = _LINKS[kind][rng.integers(len(_LINKS[kind]))].format(t=t, **roles)
        else:
            role = list(roles)[rng.integers(len(roles))]
            phrases = _ROLES[role]
            text = phrases[rng.integers(len(phrases))].format(roles[role], t=t)
        sentences.append(text.split())
    return sentences


def analogy_sections(world: World) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """All ordered pairs of distinct entities per relation, questions-words style."""

    def section(pairs):
        return [
            (a, b, c, d)
            for i, (a, b) in enumerate(pairs)
            for j, (c, d) in enumerate(pairs)
            if i != j
        ]

    cs = world.countries
    return [
        ("capital-world", section([(cap, c) for c, cap, _, _ in cs])),
        ("currency", section([(c, cur) for c, _, cur, _ in cs])),
        ("country-language", section([(c, lang) for c, _, _, lang in cs])),
        ("family", section(world.gender_pairs)),
        ("gram7-past-tense", section(world.tenses)),
        ("gram8-plural", section(world.plurals)),
    ]


def write_analogies(world: World, path: str | os.PathLike) -> pathlib.Path:
    """Writes the world's analogy questions in questions-words format; returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for name, qs in analogy_sections(world):
            f.write(f": {name}\n")
            f.writelines(" ".join(q) + "\n" for q in qs)
    return path


def write_corpus(sentences: list[list[str]], path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(s) + "\n" for s in sentences))
    return path
