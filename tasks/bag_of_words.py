"""Which part of the Bible a verse comes from, from its bag of words (a fastText-style model).

Each of the ``vocab`` most frequent words has an embedding of ``dim`` components; a verse is
the mean of its words' embeddings (at most ``max_words`` of them), and a dense layer maps it to
one of eight sections: the Law, the histories, the wisdom books, the major prophets, the minor
prophets, the gospels, Acts with Paul's letters, and the other letters with Revelation.  The
loss is the cross-entropy.  A batch touches only its verses' rows of the embedding table:
sparse gradients, with Zipfian word frequencies.  Training batches are epochs over the
training verses; the validation batch is every validation verse (``tasks.text``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tasks import data, text
from tasks.base import Task
from tasks.layers import data_rng, dense, dense_init, epoch_indices, softmax_cross_entropy

_SALT = 1010

SECTIONS = (("law", "Ge"), ("history", "Josh"), ("wisdom", "Job"), ("major_prophets", "Isa"),
            ("minor_prophets", "Hos"), ("gospels", "Mat"), ("acts_paul", "Acts"),
            ("letters_revelation", "Heb"))
"""The eight classes, each with the first book it spans (up to the next one's first)."""

# default_lr: the centre of the rate grid; adam's tuned rate on each registered size is in
# the README's task table (the wide grid, seeds 0-2), measured after the sizes were set.


def _section_of_book() -> np.ndarray:
    firsts = [data.BOOKS.index(first) for _, first in SECTIONS]
    return np.searchsorted(firsts, np.arange(len(data.BOOKS)), side="right") - 1


@functools.cache
def verses(vocab: int, max_words: int) -> tuple[dict, dict]:
    """``(train, valid)``: ``{"words": int32 [n, max_words] (padding: vocab), "label": int32
    [n]}`` for the training and the validation verses."""
    section = _section_of_book()
    parts = []
    for index, ids in zip(text.split(), text.word_ids(vocab)):
        words = np.full((len(index), max_words), vocab, np.int32)
        for row, verse in enumerate(ids):
            words[row, : min(len(verse), max_words)] = verse[:max_words]
        labels = np.array([section[data.kjv()[i][0]] for i in index], np.int32)
        parts.append({"words": words, "label": labels})
    return parts[0], parts[1]


def make(vocab: int = 2000, dim: int = 16, max_words: int = 48, steps: int = 200,
         batch_size: int = 32, default_lr: float = 0.03, tier: str = "search",
         name: str = "kjv_bag_of_words") -> Task:

    def init(key):
        k_embed, k_out = jax.random.split(key)
        return {"embed": jax.random.normal(k_embed, (vocab, dim), jnp.float32),
                "out": dense_init(k_out, dim, len(SECTIONS))}

    def loss(params, batch):
        words = batch["words"]
        present = (words < vocab).astype(jnp.float32)
        vectors = params["embed"][jnp.minimum(words, vocab - 1)] * present[..., None]
        mean = jnp.sum(vectors, axis=-2) / jnp.maximum(jnp.sum(present, -1, keepdims=True), 1)
        return softmax_cross_entropy(dense(params["out"], mean), batch["label"])

    def train_batches(seed):
        train = verses(vocab, max_words)[0]
        index = epoch_indices(data_rng(seed, _SALT), len(train["label"]), steps, batch_size)
        return {key: value[index] for key, value in train.items()}

    def valid_batch():
        return dict(verses(vocab, max_words)[1])

    return Task(
        name=name, family="bag_of_words", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"mean of {dim}-dim embeddings of a verse's words ({vocab}-word vocabulary) "
                    f"-> {len(SECTIONS)} sections of the Bible, cross-entropy (sparse gradients)",
        data_source="King James Version (public domain), tasks/data/kjv.txt.gz")
