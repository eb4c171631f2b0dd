"""The LLM demo's toy chat model: prompts about the weather, in English or in German, and a
deterministic answer to each, with token counts, so the demo's traffic can drift halfway.

No weights, no network: `answer` picks a reply from templates keyed by the prompt's words, and a
"token" is a word or a punctuation mark (a toy count, as a real server's `usage` would report one).
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import pandas as pd

CITIES = ("London", "Paris", "Berlin", "Munich", "Vienna", "Zurich", "Madrid", "Rome", "Oslo", "Dublin",
          "Hamburg", "Cologne", "Lisbon", "Prague", "Warsaw", "Boston", "Denver", "Seattle", "Chicago", "Austin")
PROMPTS = {
    "english": (
        "What will the weather be like in {city} {day}?",
        "Should I bring an umbrella to {city} {day}?",
        "Give me a {n}-day forecast for {city}, please.",
        "How cold does it get in {city} at night in {month}?",
        "Is {day} a good day for a walk along the river in {city}?",
        "Will it snow in {city} this week? I am planning a trip with {n} friends.",
        "What should I wear for a meeting in {city} {day}?",
        "Is there a chance of thunderstorms in {city} {day} afternoon?",
    ),
    "german": (
        "Wie wird das Wetter in {city} {day}?",
        "Brauche ich {day} in {city} einen Regenschirm?",
        "Gib mir bitte eine {n}-Tage-Vorhersage für {city}.",
        "Wie kalt wird es nachts in {city} im {month}?",
        "Ist {day} ein schöner Tag für einen Spaziergang am Fluss in {city}?",
        "Schneit es diese Woche in {city}? Ich plane eine Reise mit {n} Freunden.",
        "Was soll ich {day} für ein Treffen in {city} anziehen?",
        "Gibt es {day} Nachmittag in {city} Gewitter? Die Straßen wären dann gefährlich.",
    ),
}
DAYS = {"english": ("today", "tomorrow", "on Saturday", "on Sunday", "next Monday", "this weekend"),
        "german": ("heute", "morgen", "am Samstag", "am Sonntag", "nächsten Montag", "am Wochenende")}
MONTHS = {"english": ("January", "March", "June", "October", "December"),
          "german": ("Januar", "März", "Juni", "Oktober", "Dezember")}
ANSWERS = {
    "english": (
        "Expect {t} degrees in {city} with light clouds and a gentle breeze.",
        "Rain is likely in {city}: about {p} percent, so an umbrella is a good idea.",
        "It stays dry in {city}, between {t} and {t2} degrees, with sunny spells in the afternoon.",
        "A cold front reaches {city} overnight; temperatures drop to {t} degrees and the wind picks up.",
    ),
    "german": (
        "In {city} werden es etwa {t} Grad mit leichter Bewölkung und schwachem Wind.",
        "In {city} regnet es wahrscheinlich: etwa {p} Prozent, ein Schirm ist eine gute Idee.",
        "In {city} bleibt es trocken, zwischen {t} und {t2} Grad, nachmittags sonnig.",
        "Eine Kaltfront erreicht {city} über Nacht; es kühlt auf {t} Grad ab und der Wind frischt auf.",
    ),
}
_TOKEN = re.compile(r"\w+|[^\w\s]")
_GERMAN = re.compile(r"\b(?:wie|wird|ich|ist|es|für|gibt|was|soll|brauche|gib|schneit)\b", re.IGNORECASE)


def prompts(n: int, language: str = "english", seed: int = 0) -> list[str]:
    """`n` weather questions in `language` (`english` or `german`), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    templates, days, months = PROMPTS[language], DAYS[language], MONTHS[language]
    return [
        templates[rng.integers(len(templates))].format(
            city=CITIES[rng.integers(len(CITIES))], day=days[rng.integers(len(days))],
            month=months[rng.integers(len(months))], n=int(rng.integers(2, 8)))
        for _ in range(n)
    ]


def answer(prompt: str) -> str:
    """The toy model's reply: deterministic in the prompt, in the prompt's language."""
    language = "german" if _GERMAN.search(prompt) else "english"
    h = zlib.crc32(prompt.encode())
    city = next((c for c in CITIES if c in prompt), CITIES[h % len(CITIES)])
    template = ANSWERS[language][h % len(ANSWERS[language])]
    t = (h >> 8) % 25 - 5
    return template.format(city=city, t=t, t2=t + 6, p=20 + (h >> 16) % 70)


def count_tokens(text: str) -> int:
    """The toy tokenizer: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def calls(asked: list[str]) -> list[dict[str, object]]:
    """Captured calls of these prompts as the monitor's records hold them: prompt, answer and the
    server's token counts, under the column names a `protocol: openai` config with `prompt` and
    `completion` text columns reads."""
    out: list[dict[str, object]] = []
    for p in asked:
        a = answer(p)
        out.append({"prompt": p, "prompt.gen_ai.usage.input_tokens": count_tokens(p),
                    "completion": a, "completion.gen_ai.usage.output_tokens": count_tokens(a)})
    return out


def reference(n: int = 1000, seed: int = 1) -> pd.DataFrame:
    """The reference file of the chat model: English prompts, their answers and token counts (`calls`)."""
    return pd.DataFrame.from_records(calls(prompts(n, "english", seed)))
