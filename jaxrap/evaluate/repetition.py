"""Repetition in generated lyrics: loops as they start, and corpus-level repetition scores.

A language model that degenerates repeats itself verbatim: the same bar over and over, or a
few words ("j'm'arrache, j'm'arrache, j'm'arrache...") until the token budget runs out.
``detect_loop`` finds where that starts, so a UI can warn while the text streams;
``repeated_ngram_share`` (rep-n, Welleck et al. 2019) and ``distinct_n`` (Li et al. 2016)
score repetition within one text and diversity across many.

Words are runs of letters or digits, case-folded: punctuation and apostrophes separate
words ("J'm'arrache," is j, m, arrache), so "Non, non" repeats "non" once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Loop:
    """A run of the same unit, repeated back to back."""

    kind: Literal["line", "ngram"]  # the same bar, or the same word n-gram
    start: int  # character offset of the first occurrence of the unit in the text
    line: int  # index (in text.split("\n")) of the line where the loop starts
    unit: str  # the repeated bar, or the repeated words joined by spaces (case-folded)
    repeats: int  # how many times the unit occurs in a row (>= the detector's threshold)


def words_with_offsets(text: str) -> list[tuple[str, int]]:
    """(case-folded word, character offset) for every word of ``text``."""
    return [(match.group().casefold(), match.start()) for match in _WORD.finditer(text)]


def detect_loop(
    text: str,
    *,
    min_line_repeats: int = 3,
    min_ngram_repeats: int = 4,
    max_ngram: int = 12,
) -> Loop | None:
    """The earliest loop in ``text``, or None.

    A loop is a bar (non-blank line, compared by its words) repeated ``min_line_repeats``
    times in a row, blank lines between them ignored; or a sequence of 1 to ``max_ngram``
    words repeated ``min_ngram_repeats`` times back to back, across line ends. Choruses that
    repeat a bar twice, or "non, non, non", stay below the defaults. When several loops
    start at the same place, the shortest unit is reported.
    """
    loops = (_line_loop(text, min_line_repeats), _ngram_loop(text, min_ngram_repeats, max_ngram))
    return min((loop for loop in loops if loop), key=lambda loop: (loop.start, len(loop.unit)), default=None)


def _line_loop(text: str, min_repeats: int) -> Loop | None:
    bars = []  # (words of the bar, line index, character offset), blank lines left out
    offset = 0
    for index, line in enumerate(text.split("\n")):
        words = tuple(word for word, _ in words_with_offsets(line))
        if words:
            bars.append((words, index, offset + len(line) - len(line.lstrip())))
        offset += len(line) + 1
    run_start = 0
    for k in range(1, len(bars) + 1):
        if k < len(bars) and bars[k][0] == bars[run_start][0]:
            continue
        if k - run_start >= min_repeats:
            words, line_index, start = bars[run_start]
            return Loop("line", start, line_index, " ".join(words), k - run_start)
        run_start = k
    return None


def _ngram_loop(text: str, min_repeats: int, max_ngram: int) -> Loop | None:
    words = words_with_offsets(text)
    tokens = [word for word, _ in words]
    best: tuple[int, int, int] | None = None  # (start word, n, repeats)
    for n in range(1, max_ngram + 1):
        # tokens[p] == tokens[p + n] for a run of positions means the n-gram at the run's
        # start repeats 1 + run // n times.
        run = 0
        for p in range(len(tokens) - n - 1, -1, -1):  # backwards: run = matches from p on
            run = run + 1 if tokens[p] == tokens[p + n] else 0
            repeats = 1 + run // n
            if repeats >= min_repeats and (best is None or p < best[0]):
                best = (p, n, repeats)
    if best is None:
        return None
    p, n, repeats = best
    start = words[p][1]
    return Loop("ngram", start, text.count("\n", 0, start), " ".join(tokens[p : p + n]), repeats)


def _ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    tokens = [word for word, _ in words_with_offsets(text)]
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repeated_ngram_share(text: str, n: int = 4) -> float:
    """rep-n: the share of the text's word n-grams that repeat an earlier one,
    1 - distinct / total (0 for a text without repetition or shorter than n words)."""
    grams = _ngrams(text, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def distinct_n(texts: Iterable[str], n: int) -> float:
    """distinct-n: distinct word n-grams over all n-grams, pooled across ``texts``
    (n-grams never span two texts; 0 when there are none)."""
    grams = [gram for text in texts for gram in _ngrams(text, n)]
    return len(set(grams)) / len(grams) if grams else 0.0
