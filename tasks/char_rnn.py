"""Character-level GRU language model on the King James Version.

An embedding feeds a GRU of ``hidden`` units over windows of ``context`` characters; a linear
read-out of each state predicts the next character; the loss is the mean cross-entropy in nats
per character.  Training windows start at random offsets of the training verses
(``tasks.text``); the validation batch is fixed, evenly spread windows of the validation verses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tasks import text
from tasks.base import Task
from tasks.layers import data_rng, dense, dense_init, gru_init, gru_step, softmax_cross_entropy

_SALT = 808

# default_lr: the centre of the rate grid; adam's tuned rate on each registered size is in
# the README's task table (the wide grid, seeds 0-2), measured after the sizes were set.


def make(hidden: int = 32, embed: int = 16, context: int = 16, steps: int = 200,
         batch_size: int = 16, valid_windows: int = 256, default_lr: float = 0.03,
         tier: str = "search", name: str = "kjv_gru") -> Task:
    vocab = len(text.alphabet())

    def init(key):
        k_embed, k_gru, k_out = jax.random.split(key, 3)
        return {"embed": jax.random.normal(k_embed, (vocab, embed), jnp.float32),
                "gru": gru_init(k_gru, embed, hidden),
                "out": dense_init(k_out, hidden, vocab)}

    def loss(params, batch):
        tokens = batch["tokens"]
        inputs = jnp.swapaxes(params["embed"][tokens[:, :-1]], 0, 1)  # [time, batch, embed]
        state0 = jnp.zeros((tokens.shape[0], hidden), jnp.float32)

        def step(state, x):
            state = gru_step(params["gru"], state, x)
            return state, state

        _, states = jax.lax.scan(step, state0, inputs)
        logits = dense(params["out"], jnp.swapaxes(states, 0, 1))
        return softmax_cross_entropy(logits, tokens[:, 1:])

    def train_batches(seed):
        train = text.char_codes()[0]
        starts = data_rng(seed, _SALT).integers(0, len(train) - context, (steps, batch_size))
        return {"tokens": text.windows(train, starts, context + 1)}

    def valid_batch():
        return {"tokens": text.spread_windows(text.char_codes()[1], valid_windows, context + 1)}

    return Task(
        name=name, family="rnn_lm", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"embedding({embed})-GRU({hidden}) next-character model, cross-entropy "
                    f"over {context}-character windows",
        data_source="King James Version (public domain), tasks/data/kjv.txt.gz")
