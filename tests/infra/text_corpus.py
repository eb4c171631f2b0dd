"""Synthetic prompts from word lists, for the text descriptor tests and benchmarks/text_descriptors.py.

Each corpus draws words Zipf-like from its list (as natural text does), sentence lengths from a
shifted Poisson, and mixes in words of a long tail shared by all topics, and
sprinkles the occasional number, email address or refusal, so every descriptor
has a non-degenerate distribution. A language or topic change is a change of word list.
"""

from __future__ import annotations

import numpy as np

WORDS = {
    "weather": (
        "the a is it will be today tomorrow rain sun cloud wind storm cold warm hot forecast weather "
        "morning evening night week weekend snow temperature degrees humidity umbrella coat sky clear "
        "grey heavy light showers chance of in on at for and or but what how when where should i wear "
        "city north south coast mountains valley breeze frost fog thunder lightning sunny rainy windy"
    ).split(),
    "finance": (
        "the a is it will be today tomorrow stock bond market price yield rate interest inflation bank "
        "loan mortgage account balance invest portfolio fund dividend earnings revenue profit loss tax "
        "budget credit debt equity share index trading risk return of in on at for and or but what how "
        "should i buy sell hold pay save quarter annual growth currency exchange fee insurance pension"
    ).split(),
    "german": (
        "der die das ist es wird sein heute morgen regen sonne wolke wind sturm kalt warm heiß wetter "
        "vorhersage abend nacht woche wochenende schnee temperatur grad feuchtigkeit schirm mantel "
        "himmel klar grau schwer leicht schauer chance von in auf an für und oder aber was wie wann wo "
        "soll ich tragen stadt norden süden küste berge tal brise frost nebel donner blitz sonnig"
    ).split(),
    "russian": (
        "и в не на я что он с как это по но она они мы вы погода завтра сегодня дождь солнце облако "
        "ветер буря холодно тепло жарко прогноз утро вечер ночь неделя выходные снег температура "
        "градус влажность зонт пальто небо ясно серый сильный лёгкий ливень шанс город север юг берег"
    ).split(),
}
REFUSAL = "I'm sorry, but I can't help with that."
# A long tail shared by every topic: 8,000 pseudo-words (names, places, jargon), so a reference never
# sees all of them and the out-of-vocabulary share is a real distribution, not a constant 0.
_SYLLABLES = "ka lo mi ne ru sa ti vo we yu ba de fi go hu ja ko li mo nu".split()
RARE = np.array([a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES], dtype=object)
RARE_SHARE = 0.1


def corpus(rng: np.random.Generator, n: int, topic: str = "weather", mean_words: float = 12.0) -> list[str]:
    """`n` texts of the topic's words; `mean_words` sets the length distribution."""
    words = np.array(WORDS[topic], dtype=object)
    ranks = np.arange(1, words.size + 1)
    p = 1.0 / ranks
    p /= p.sum()
    lengths = 3 + rng.poisson(mean_words - 3, n)
    flat = rng.choice(words, size=int(lengths.sum()), p=p)
    rare = rng.random(flat.size) < RARE_SHARE
    tail = 1.0 / np.arange(1, RARE.size + 1)
    flat[rare] = rng.choice(RARE, size=int(rare.sum()), p=tail / tail.sum())
    cuts = np.cumsum(lengths)[:-1]
    texts = []
    extras = rng.random(n)
    for i, sentence in enumerate(np.split(flat, cuts)):
        text = " ".join(sentence)
        text = text[:1].upper() + text[1:] + ("?" if extras[i] < 0.3 else ".")
        if extras[i] > 0.97:
            text += f" Reach me at user{int(extras[i] * 1e6)}@example.com."
        elif extras[i] > 0.93:
            text += f" It costs {int(extras[i] * 1000)} dollars."
        elif extras[i] < 0.02:
            text = REFUSAL
        texts.append(text)
    return texts
