"""Emotion class schemes: how raw emotion words map to the classes a benchmark uses.

A sample carries its raw emotion (``"happiness"``, ``"repression"``, ``"fear"``...). A scheme maps
each raw emotion to one of its classes, or to ``None`` when the scheme leaves it out; rows outside
a scheme are dropped (and counted) by the loaders.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Spelling variants seen in the data sets' annotation files, mapped to one word each.
_ALIASES = {
    "happy": "happiness",
    "happiness": "happiness",
    "positive": "positive",
    "negative": "negative",
    "surprise": "surprise",
    "surprised": "surprise",
    "disgust": "disgust",
    "disgusted": "disgust",
    "repression": "repression",
    "fear": "fear",
    "sad": "sadness",
    "sadness": "sadness",
    "anger": "anger",
    "angry": "anger",
    "contempt": "contempt",
    "other": "others",
    "others": "others",
    "tense": "tense",
}

NEGATIVE_EMOTIONS = ("disgust", "repression", "anger", "contempt", "fear", "sadness", "negative")


def normalise_emotion(raw: str) -> str:
    """Lower-case, trimmed, with known spelling variants merged (``"Other"`` -> ``"others"``)."""
    key = str(raw).strip().lower()
    return _ALIASES.get(key, key)


@dataclass(frozen=True)
class ClassScheme:
    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str | None] = field(hash=False)
    description: str = ""

    def label(self, emotion: str) -> str | None:
        """The class of a raw emotion under this scheme, or ``None`` when it is outside it."""
        return self.mapping.get(normalise_emotion(emotion))

    def problem(self, emotion) -> str | None:
        """Why a raw emotion cannot be read as written (an empty cell, a word no data set uses, such
        as a cut-off ``happi``), or ``None`` when it can: known words outside this scheme are fine
        (they are dropped and counted), unknown ones are not."""
        return emotion_problem(emotion)

    def index(self, label: str) -> int:
        return self.classes.index(label)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


COMPOSITE3 = ClassScheme(
    "composite3",
    ("negative", "positive", "surprise"),
    {
        "happiness": "positive",
        "positive": "positive",
        "surprise": "surprise",
        **{e: "negative" for e in NEGATIVE_EMOTIONS},
        "others": None,
        "tense": None,
    },
    "MEGC2019 composite: negative (disgust, repression, anger, contempt, fear, sadness), "
    "positive (happiness), surprise; 'others' left out.",
)

CASME2_5 = ClassScheme(
    "casme2_5",
    ("happiness", "disgust", "repression", "surprise", "others"),
    {
        "happiness": "happiness",
        "disgust": "disgust",
        "repression": "repression",
        "surprise": "surprise",
        "others": "others",
        # fear (2 clips) and sadness (7) are too rare in CASME II: the 5-class literature leaves them out
        "fear": None,
        "sadness": None,
    },
    "CASME II 5-class as in the MER literature: happiness, disgust, repression, surprise, others; "
    "fear and sadness (9 clips) left out.",
)

SAMM5 = ClassScheme(
    "samm5",
    ("happiness", "anger", "contempt", "surprise", "others"),
    {
        "happiness": "happiness",
        "anger": "anger",
        "contempt": "contempt",
        "surprise": "surprise",
        "others": "others",
        "disgust": None,
        "fear": None,
        "sadness": None,
    },
    "SAMM 5-class as in the MER literature: the five largest classes (anger, contempt, happiness, "
    "surprise, other); disgust, fear and sadness (23 clips) left out.",
)

SMIC3 = ClassScheme(
    "smic3",
    ("negative", "positive", "surprise"),
    {"negative": "negative", "positive": "positive", "surprise": "surprise"},
    "SMIC-HS 3-class: negative, positive, surprise (the folder names).",
)

SCHEMES: dict[str, ClassScheme] = {s.name: s for s in (COMPOSITE3, CASME2_5, SAMM5, SMIC3)}
#: Every emotion word an annotation file may hold (after :func:`normalise_emotion`): the spelling
#: variants' words and every word a scheme maps, in or out of its classes.
KNOWN_EMOTIONS = frozenset(_ALIASES.values()) | {e for s in SCHEMES.values() for e in s.mapping}


def emotion_problem(emotion) -> str | None:
    """``None`` when ``emotion`` is a known emotion word (any case, known spelling variants); else
    what is wrong with it, for a message that also names the file, line and column."""
    if emotion is None or not str(emotion).strip():
        return "the emotion cell is empty"
    if normalise_emotion(emotion) not in KNOWN_EMOTIONS:
        return (f"emotion {str(emotion).strip()!r} is not a word any data set uses (known: "
                f"{', '.join(sorted(KNOWN_EMOTIONS))}; case and the variants Happy, Other... are accepted)")
    return None


def get_scheme(name):
    """A scheme by name, or the object itself when it already behaves like one."""
    if not isinstance(name, str):
        return name
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown class scheme {name!r}; choose one of {sorted(SCHEMES)}") from None
