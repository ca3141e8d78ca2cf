"""Text of the King James Version prepared for the language tasks: one fixed train/validation
split by verse, a character code, word tokens and a vocabulary from the training verses only.

Every tenth verse (verse index 9, 19, ...) is a validation verse, so both parts hold every
book and style; no task ever trains on a validation verse.  Results are cached and read-only.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from tasks import data

VALID_EVERY = 10
"""One verse in this many (the last of each run of ten) is held out for validation."""

_WORD = re.compile(r"[a-z]+")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@functools.cache
def split() -> tuple[np.ndarray, np.ndarray]:
    """``(train verse indices, validation verse indices)`` into ``data.kjv()``."""
    index = np.arange(len(data.kjv()))
    valid = index % VALID_EVERY == VALID_EVERY - 1
    return _frozen(index[~valid]), _frozen(index[valid])


@functools.cache
def alphabet() -> str:
    """Every character of the KJV, sorted (62 of them, newline included)."""
    return "".join(sorted(set("\n".join(text for _, text in data.kjv()) + "\n")))


@functools.cache
def char_codes() -> tuple[np.ndarray, np.ndarray]:
    """``(train, valid)``: int32 codes into :func:`alphabet` of the training verses and of the
    validation verses, each verse followed by a newline."""
    lookup = np.zeros(128, np.int32)
    lookup[np.frombuffer(alphabet().encode("ascii"), np.uint8)] = np.arange(len(alphabet()))
    verses = data.kjv()
    parts = []
    for index in split():
        text = "".join(verses[i][1] + "\n" for i in index)
        parts.append(_frozen(lookup[np.frombuffer(text.encode("ascii"), np.uint8)]))
    return parts[0], parts[1]


def words(text: str) -> list[str]:
    """Lower-case runs of letters: ``"Let there be light:"`` -> ``["let", "there", "be",
    "light"]``."""
    return _WORD.findall(text.lower())


@functools.cache
def vocabulary(size: int) -> tuple[str, ...]:
    """The ``size`` most frequent words of the training verses, most frequent first (ties in
    alphabetical order)."""
    counts: dict[str, int] = {}
    verses = data.kjv()
    for i in split()[0]:
        for word in words(verses[i][1]):
            counts[word] = counts.get(word, 0) + 1
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return tuple(ranked[:size])


@functools.cache
def word_ids(size: int) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """``(train, valid)``: per verse, int32 ids into ``vocabulary(size)`` of its words, words
    outside the vocabulary dropped."""
    lookup = {w: i for i, w in enumerate(vocabulary(size))}
    verses = data.kjv()
    parts = []
    for index in split():
        parts.append(tuple(_frozen(np.array([lookup[w] for w in words(verses[i][1]) if w in lookup],
                                            np.int32)) for i in index))
    return parts[0], parts[1]


def windows(codes: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``codes[start : start + length]`` for every start, stacked on a new last axis."""
    return codes[starts[..., None] + np.arange(length)]


def spread_windows(codes: np.ndarray, count: int, length: int) -> np.ndarray:
    """``count`` non-overlapping windows of ``length`` codes spread evenly over ``codes``."""
    stride = (len(codes) - length) // max(count - 1, 1)
    if stride < length:
        raise ValueError(f"{count} windows of {length} do not fit in {len(codes)} codes")
    return windows(codes, np.arange(count) * stride, length)
