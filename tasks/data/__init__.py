"""Data the tasks ship, loaded lazily and cached, returned as read-only NumPy arrays.

* ``digits.npz``: the 8x8 handwritten digits (1,797 images, pixel counts 0..16, labels 0..9),
  the test set of the UCI ML hand-written digits data set as shipped by scikit-learn
  (``sklearn/datasets/data/digits.csv.gz``); see ``LICENSE-digits.txt``.
* ``genesis-kjv.txt``: the Book of Genesis, King James Version (1611, public domain), one verse
  a line, dumped from Debian's ``bible-kjv-text`` package; see ``LICENSE-genesis-kjv.txt``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent

DIGITS_VALID_SIZE = 497
"""Images held out for validation; the other 1,300 are the training pool."""


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


@functools.cache
def genesis() -> str:
    """The Book of Genesis (KJV) as plain text, one verse a line (196,818 characters)."""
    return (DATA_DIR / "genesis-kjv.txt").read_text(encoding="ascii")


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
