"""Likelihood and impact scales: words, numbers and percentages to levels 1-5.

Every register states likelihood and impact in its own way. They are mapped
onto one ordinal scale, 1 (lowest) to 5 (highest):

* numbers 1 to 5 are taken as the level itself (``"4"``, ``"4 - Likely"``);
* probabilities and percentages fall into bands: up to 10 % is 1, up to 30 %
  is 2, up to 50 % is 3, up to 80 % is 4, above 80 % is 5 (``"0.35"`` and
  ``"35%"`` are both 3);
* words are looked up in the named scales below. For each column the first
  named scale that holds every word of the column is chosen, so that a word
  shared by two scales (``minor``) means what the rest of the column implies;
  when no single scale holds them all, the merged table is used.

Unknown words give no level (``NA``) and a warning naming the line.
"""

from __future__ import annotations

import re

__all__ = [
    "IMPACT_SCALES",
    "LIKELIHOOD_SCALES",
    "PERCENT_BANDS",
    "ScaleChoice",
    "choose_scale",
    "normalize_word",
    "to_level",
]

#: Upper bounds (inclusive, in percent) of levels 1 to 4; above the last is 5.
PERCENT_BANDS = (10.0, 30.0, 50.0, 80.0)

#: Named likelihood scales, lowest level first; extra synonyms after ``|``.
LIKELIHOOD_SCALES: dict[str, dict[str, int]] = {
    "rare..almost certain": {
        "rare": 1,
        "unlikely": 2,
        "possible": 3,
        "likely": 4,
        "almost certain": 5,
        "very unlikely": 1,
        "improbable": 1,
        "remote": 1,
        "probable": 4,
        "very likely": 5,
        "certain": 5,
    },
    "very low..very high": {
        "very low": 1,
        "low": 2,
        "medium": 3,
        "high": 4,
        "very high": 5,
        "negligible": 1,
        "moderate": 3,
        "critical": 5,
    },
    "never..frequent": {
        "never": 1,
        "seldom": 2,
        "occasional": 3,
        "frequent": 4,
        "constant": 5,
        "occasionally": 3,
        "frequently": 4,
    },
}

#: Named impact scales, lowest level first.
IMPACT_SCALES: dict[str, dict[str, int]] = {
    "insignificant..severe": {
        "insignificant": 1,
        "minor": 2,
        "moderate": 3,
        "major": 4,
        "severe": 5,
        "negligible": 1,
        "catastrophic": 5,
        "extreme": 5,
    },
    "minor..catastrophic (DCB0129)": {
        "minor": 1,
        "significant": 2,
        "considerable": 3,
        "major": 4,
        "catastrophic": 5,
    },
    "very low..very high": {
        "very low": 1,
        "low": 2,
        "medium": 3,
        "high": 4,
        "very high": 5,
        "negligible": 1,
        "moderate": 3,
        "serious": 4,
        "critical": 5,
        "severe": 5,
    },
}

_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)\s*(%?)$")
_LEADING_LEVEL = re.compile(r"^([1-5])(?:\s*[-–:/.)(]|\s+[a-z])")
_TRAILING_LEVEL = re.compile(r"\(\s*([1-5])\s*\)$")


class ScaleChoice:
    """The word table chosen for one column, with its name for reports."""

    def __init__(self, name: str, words: dict[str, int]):
        self.name = name
        self.words = words

    def __repr__(self) -> str:
        return f"ScaleChoice({self.name!r})"


def normalize_word(value: str) -> str:
    """Lower-case a scale cell, drop emphasis marks and collapse spaces."""
    text = re.sub(r"[*_`~]", "", value).strip().lower()
    text = text.replace("-", " ")
    return re.sub(r"\s+", " ", text)


def _merged(scales: dict[str, dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for words in scales.values():
        for word, level in words.items():
            merged.setdefault(word, level)
    return merged


def _word_part(value: str) -> str:
    """The words of a cell without a stated level (``Likely (4)`` -> ``likely``)."""
    text = _TRAILING_LEVEL.sub("", value).strip()
    return re.sub(r"^[1-5]\s*[-–:/.)]\s*", "", text).strip()


def choose_scale(
    values: list[str], kind: str, extra: dict[str, int] | None = None
) -> ScaleChoice:
    """Pick the word scale for one column.

    Parameters
    ----------
    values : list of str
        The column's cells as written.
    kind : {"likelihood", "impact"}
        Which family of scales to look in.
    extra : dict, optional
        Words (lower case) to levels 1-5 given by the user; they win over
        every built-in scale.

    Returns
    -------
    ScaleChoice
        The first named scale holding every word of the column, else the
        merged table ("mixed"). Columns with numbers only get "numeric".
    """
    scales = LIKELIHOOD_SCALES if kind == "likelihood" else IMPACT_SCALES
    extra = {normalize_word(k): int(v) for k, v in (extra or {}).items()}
    words = set()
    for value in values:
        word = _word_part(normalize_word(value))
        if word and not _NUMBER.match(word) and word not in extra:
            words.add(word)
    if not words:
        name = "numeric" if any(normalize_word(v) for v in values) else "empty"
        return ScaleChoice(name, {**_merged(scales), **extra})
    for name, table in scales.items():
        if words <= set(table):
            return ScaleChoice(name, {**table, **extra})
    return ScaleChoice("mixed", {**_merged(scales), **extra})


def to_level(value: str | None, scale: ScaleChoice) -> tuple[int | None, str | None]:
    """Map one likelihood or impact cell to a level 1-5.

    Parameters
    ----------
    value : str or None
        The cell as written, e.g. ``"Likely"``, ``"4"``, ``"40%"``, ``"0.4"``.
    scale : ScaleChoice
        The column's word table, from :func:`choose_scale`.

    Returns
    -------
    (level, problem)
        ``level`` is 1-5 or None; ``problem`` says why a non-empty cell got
        no level, and is None otherwise.
    """
    if value is None:
        return None, None
    text = normalize_word(value)
    if not text:
        return None, None

    number = _NUMBER.match(text)
    if number:
        amount = float(number.group(1))
        if number.group(2) or (0 < amount < 1 and "." in text):
            percent = amount if number.group(2) else amount * 100
            if percent > 100:
                return None, f"{value!r} is above 100%"
            for level, bound in enumerate(PERCENT_BANDS, start=1):
                if percent <= bound:
                    return level, None
            return 5, None
        if amount.is_integer() and 1 <= amount <= 5:
            return int(amount), None
        return None, f"{value!r} is not a level 1-5, a probability or a percentage"

    leading = _LEADING_LEVEL.match(text) or _TRAILING_LEVEL.search(text)
    if leading:
        return int(leading.group(1)), None
    word = _word_part(text)
    if word in scale.words:
        return scale.words[word], None
    return None, f"unknown word {value.strip()!r} (scale {scale.name})"
