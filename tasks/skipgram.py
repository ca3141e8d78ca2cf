"""Word embeddings by skip-gram with negative sampling (word2vec) on the King James Version.

Each word of the ``vocab`` most frequent has an input vector and an output vector of ``dim``
components.  A training example is a (centre, context) pair of in-vocabulary words at most
``window`` apart within a training verse, with ``negatives`` words drawn from the unigram
distribution raised to 0.75; the loss is ``-log s(u.v) - sum log s(-u.n)`` (``s`` the logistic
function), averaged over the batch.  Every batch touches a few dozen rows of two large tables,
so gradients are sparse, and word frequencies are Zipfian, so they are heavy-tailed.  The
validation batch is a fixed draw of pairs (and negatives) from the validation verses.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tasks import text
from tasks.base import Task
from tasks.layers import data_rng

_SALT = 909
_VALID_SALT = 910

# default_lr: the centre of the rate grid; adam's tuned rate on each registered size is in
# the README's task table (the wide grid, seeds 0-2), measured after the sizes were set.
# 10**-1.5 (0.0316): at 0.1 adam's validation loss was 3.16 (search size) and 5.0 (tier B)
# against 2.48 and 2.52 at 0.0316 (seed 0), so the grid is centred half a decade lower.


@functools.cache
def pairs(vocab: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train pairs [n, 2], valid pairs [m, 2], unigram counts [vocab])``: (centre, context)
    word ids within ``window`` of each other in the same verse."""
    def collect(verses) -> np.ndarray:
        found = []
        for ids in verses:
            for offset in range(1, window + 1):
                if len(ids) > offset:
                    found.append(np.stack([ids[:-offset], ids[offset:]], axis=1))
                    found.append(np.stack([ids[offset:], ids[:-offset]], axis=1))
        return np.concatenate(found).astype(np.int32)

    train, valid = text.word_ids(vocab)
    counts = np.bincount(np.concatenate(train), minlength=vocab)
    return collect(train), collect(valid), counts


def _negatives(rng: np.random.Generator, counts: np.ndarray, shape) -> np.ndarray:
    weights = counts.astype(np.float64) ** 0.75
    return rng.choice(len(counts), size=shape, p=weights / weights.sum()).astype(np.int32)


def make(vocab: int = 1000, dim: int = 16, window: int = 2, negatives: int = 4,
         steps: int = 200, batch_size: int = 64, valid_size: int = 4096,
         default_lr: float = 10 ** -1.5, tier: str = "search",
         name: str = "kjv_skipgram") -> Task:

    def init(key):
        k_in, k_out = jax.random.split(key)
        scale = 1.0 / np.sqrt(dim)
        return {"in": scale * jax.random.normal(k_in, (vocab, dim), jnp.float32),
                "out": scale * jax.random.normal(k_out, (vocab, dim), jnp.float32)}

    def loss(params, batch):
        centre = params["in"][batch["centre"]]                      # [b, dim]
        context = params["out"][batch["context"]]                   # [b, dim]
        noise = params["out"][batch["negative"]]                    # [b, k, dim]
        positive = jax.nn.log_sigmoid(jnp.sum(centre * context, axis=-1))
        negative = jax.nn.log_sigmoid(-jnp.einsum("bd,bkd->bk", centre, noise))
        return -jnp.mean(positive + jnp.sum(negative, axis=-1))

    def draw(rng, source, shape):
        chosen = source[rng.integers(0, len(source), shape)]
        counts = pairs(vocab, window)[2]
        return {"centre": chosen[..., 0], "context": chosen[..., 1],
                "negative": _negatives(rng, counts, shape + (negatives,))}

    def train_batches(seed):
        return draw(data_rng(seed, _SALT), pairs(vocab, window)[0], (steps, batch_size))

    @functools.cache
    def _valid():
        return draw(data_rng(0, _VALID_SALT), pairs(vocab, window)[1], (valid_size,))

    def valid_batch():
        return dict(_valid())

    return Task(
        name=name, family="embedding", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"skip-gram, {vocab} words x {dim} dims (input and output tables), window "
                    f"{window}, {negatives} negatives (sparse, Zipfian gradients)",
        data_source="King James Version (public domain), tasks/data/kjv.txt.gz")
