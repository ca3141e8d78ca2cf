"""Data the tasks ship, loaded lazily and cached, returned as read-only NumPy arrays.

* ``digits.npz``: the 8x8 handwritten digits (1,797 images, pixel counts 0..16, labels 0..9),
  the test set of the UCI ML hand-written digits data set as shipped by scikit-learn
  (``sklearn/datasets/data/digits.csv.gz``); see ``LICENSE-digits.txt``.
* ``kjv.txt.gz``: the King James Version of the Bible (1611, public domain), 31,102 verses, one
  a line as ``"<book><chapter>:<verse> <text>"`` (``"Ge1:1 In the beginning ..."``), dumped
  from Debian's ``bible-kjv-text`` package; see ``LICENSE-kjv.txt``.
* ``costs.json``: each built-in task's measured seconds per training run (one rate, one seed,
  one core, after its compile), written by ``scripts/task_table.py --write-costs``.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent

DIGITS_VALID_SIZE = 497
"""Images held out for validation; the other 1,300 are the training pool."""


@functools.cache
def costs() -> dict:
    """``costs.json``: ``seconds_per_run`` (task name -> seconds), ``measured`` (the date),
    ``how`` and ``command``; an empty ``seconds_per_run`` when the file is missing."""
    try:
        with open(DATA_DIR / "costs.json", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {"seconds_per_run": {}}


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [1797, 8, 8] in 0..16, labels uint8 [1797])``."""
    with np.load(DATA_DIR / "digits.npz") as data:
        return _frozen(data["images"].copy()), _frozen(data["labels"].copy())


@functools.cache
def digits_split() -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, validation indices)``: a fixed, disjoint split of :func:`digits`
    (a permutation from seed 0, so both parts hold every class)."""
    images, _ = digits()
    order = np.random.default_rng(0).permutation(len(images))
    valid, train = np.sort(order[:DIGITS_VALID_SIZE]), np.sort(order[DIGITS_VALID_SIZE:])
    return _frozen(train), _frozen(valid)


_REFERENCE = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")

BOOKS = ["Ge", "Exo", "Lev", "Num", "Deu", "Josh", "Jdgs", "Ruth", "1Sm", "2Sm", "1Ki", "2Ki", "1Chr", "2Chr", "Ezra", "Neh", "Est", "Job", "Psa", "Prv", "Eccl", "SSol", "Isa", "Jer", "Lam", "Eze", "Dan", "Hos", "Joel", "Amos", "Obad", "Jonah", "Mic", "Nahum", "Hab", "Zep", "Hag", "Zec", "Mal", "Mat", "Mark", "Luke", "John", "Acts", "Rom", "1Cor", "2Cor", "Gal", "Eph", "Phi", "Col", "1Th", "2Th", "1Tim", "2Tim", "Titus", "Phmn", "Heb", "Jas", "1Pet", "2Pet", "1Jn", "2Jn", "3Jn", "Jude", "Rev"]
"""The 66 books in canonical order, by the abbreviations of the data file."""


@functools.cache
def kjv() -> tuple[tuple[int, str], ...]:
    """Every verse of the King James Version in canonical order, as ``(book index into
    BOOKS, text)``; the text is ASCII (4,404,412 bytes in the file, references included)."""
    verses = []
    with gzip.open(DATA_DIR / "kjv.txt.gz", "rt", encoding="ascii") as lines:
        for number, line in enumerate(lines, 1):
            match = _REFERENCE.match(line.rstrip("\n"))
            if match is None or match.group(1) not in BOOKS:
                raise ValueError(f"{DATA_DIR / 'kjv.txt.gz'}:{number}: not a verse: {line[:40]!r}")
            verses.append((BOOKS.index(match.group(1)), match.group(4)))
    return tuple(verses)


@functools.cache
def genesis() -> str:
    """The Book of Genesis (KJV) as plain text, one verse a line (196,818 characters)."""
    return "".join(text + "\n" for book, text in kjv() if book == 0)


@functools.cache
def digits_pools() -> tuple[dict, dict]:
    """``(train, valid)``, each ``{"image": float32 [n, 8, 8] in [0, 1], "label": int32 [n]}``,
    from the split of :func:`digits_split`."""
    images, labels = digits()
    pools = []
    for index in digits_split():
        pools.append({"image": _frozen((images[index] / 16.0).astype(np.float32)),
                      "label": _frozen(labels[index].astype(np.int32))})
    return pools[0], pools[1]
