"""Low-rank factorisation of the word co-occurrence matrix of the King James Version (GloVe).

``X[i, j]`` counts how often word ``j`` occurs within ``window`` words of word ``i`` in the
same training verse, each occurrence weighted by 1/distance, over the ``vocab`` most frequent
words.  The model ``w_i . c_j + b_i + d_j`` fits ``log X[i, j]`` by least squares weighted by
``min(1, (X/100)^0.75)`` (Pennington et al., 2014).  The non-zero entries are split once: a
fixed 10% is the validation set (matrix completion: predict counts never trained on), the rest
is sampled uniformly for training batches.  Each batch touches a few rows of each table.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tasks import text
from tasks.base import Task
from tasks.layers import data_rng

_SALT = 1111
_SPLIT_SALT = 1112
_X_MAX = 100.0

# default_lr: the centre of the rate grid; adam's tuned rate on each registered size is in
# the README's task table (the wide grid, seeds 0-2), measured after the sizes were set.


@functools.cache
def entries(vocab: int, window: int) -> tuple[dict, dict]:
    """``(train, valid)`` non-zero entries ``{"row", "col": int32, "log_count", "weight":
    float32}`` of the co-occurrence matrix of the training verses."""
    counts = np.zeros((vocab, vocab), np.float64)
    for ids in text.word_ids(vocab)[0]:
        for offset in range(1, window + 1):
            if len(ids) > offset:
                np.add.at(counts, (ids[:-offset], ids[offset:]), 1.0 / offset)
                np.add.at(counts, (ids[offset:], ids[:-offset]), 1.0 / offset)
    rows, cols = np.nonzero(counts)
    values = counts[rows, cols]
    table = {"row": rows.astype(np.int32), "col": cols.astype(np.int32),
             "log_count": np.log(values).astype(np.float32),
             "weight": np.minimum(1.0, (values / _X_MAX) ** 0.75).astype(np.float32)}
    valid = np.random.default_rng(_SPLIT_SALT).random(len(rows)) < 0.1
    return ({k: v[~valid] for k, v in table.items()}, {k: v[valid] for k, v in table.items()})


def make(vocab: int = 500, dim: int = 16, window: int = 3, steps: int = 200,
         batch_size: int = 128, default_lr: float = 0.03, tier: str = "search",
         name: str = "kjv_cooccurrence") -> Task:

    def init(key):
        k_word, k_context = jax.random.split(key)
        scale = 0.5 / np.sqrt(dim)
        return {"word": scale * jax.random.normal(k_word, (vocab, dim), jnp.float32),
                "context": scale * jax.random.normal(k_context, (vocab, dim), jnp.float32),
                "word_bias": jnp.zeros((vocab,), jnp.float32),
                "context_bias": jnp.zeros((vocab,), jnp.float32)}

    def loss(params, batch):
        row, col = batch["row"], batch["col"]
        fit = (jnp.sum(params["word"][row] * params["context"][col], axis=-1)
               + params["word_bias"][row] + params["context_bias"][col])
        return jnp.mean(batch["weight"] * (fit - batch["log_count"]) ** 2)

    def train_batches(seed):
        train = entries(vocab, window)[0]
        index = data_rng(seed, _SALT).integers(0, len(train["row"]), (steps, batch_size))
        return {key: value[index] for key, value in train.items()}

    def valid_batch():
        return dict(entries(vocab, window)[1])

    return Task(
        name=name, family="matrix_factorisation", init=init, loss=loss,
        train_batches=train_batches, valid_batch=valid_batch, steps=steps,
        batch_size=batch_size, default_lr=default_lr, tier=tier,
        description=f"rank-{dim} GloVe fit of log co-occurrence counts, {vocab} words, window "
                    f"{window}; validation on held-out entries",
        data_source="King James Version (public domain), tasks/data/kjv.txt.gz")
