"""Tiny character-level transformer language model on the King James Version.

A decoder-only transformer (pre-layer-norm, causal self-attention, gelu MLP, learned positions)
predicts the next character of windows of ``context`` characters; the loss is the mean
cross-entropy in nats per character.  ``text="genesis"``: the Book of Genesis, split once: its first 90% (whole
verses) is the training text, its last 10% (the end of the book) the validation text;
``text="kjv"``: the whole Bible, split by verse as ``tasks.text`` does.  A run's batches are
windows at random offsets of the training text; the validation batch is fixed, non-overlapping
windows of the validation text.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tasks import data
from tasks import text as kjv_text
from tasks.base import Task
from tasks.layers import data_rng, dense, dense_init, softmax_cross_entropy

_SALT = 606
_TRAIN_FRACTION = 0.9

# default_lr: the best adam learning rate of a sweep (validation loss after the default budget,
# mean of seeds 0-2):
#   1e-3: 2.305, 2e-3: 2.242, 5e-3: 2.192, 1e-2: 2.095, 2e-2: 2.113, 5e-2: 2.553, 0.1: 2.844


@functools.cache
def corpus() -> tuple[str, np.ndarray, np.ndarray]:
    """``(alphabet, train codes, valid codes)``: codes are int32 indices into the alphabet
    (every character of the text, sorted); the split falls on a verse boundary."""
    text = data.genesis()
    alphabet = "".join(sorted(set(text)))
    codes = np.frombuffer(text.encode("ascii"), np.uint8)
    lookup = np.zeros(256, np.int32)
    lookup[np.frombuffer(alphabet.encode("ascii"), np.uint8)] = np.arange(len(alphabet))
    codes = lookup[codes]
    split = text.index("\n", int(len(text) * _TRAIN_FRACTION)) + 1
    return alphabet, codes[:split], codes[split:]


def _layer_norm_init(width: int) -> dict:
    return {"scale": jnp.ones((width,), jnp.float32), "bias": jnp.zeros((width,), jnp.float32)}


def _layer_norm(p: dict, x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]


def _block_init(key, width: int) -> dict:
    kq, ko, k1, k2 = jax.random.split(key, 4)
    return {"ln1": _layer_norm_init(width), "qkv": dense_init(kq, width, 3 * width),
            "proj": dense_init(ko, width, width), "ln2": _layer_norm_init(width),
            "up": dense_init(k1, width, 4 * width), "down": dense_init(k2, 4 * width, width)}


def _block(p: dict, x, heads: int):
    batch, length, width = x.shape
    q, k, v = jnp.split(dense(p["qkv"], _layer_norm(p["ln1"], x)), 3, axis=-1)
    q, k, v = (t.reshape(batch, length, heads, width // heads) for t in (q, k, v))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(width // heads)
    causal = np.tril(np.ones((length, length), bool))
    scores = jnp.where(causal, scores, -1e9)
    attended = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
    x = x + dense(p["proj"], attended.reshape(batch, length, width))
    hidden = jax.nn.gelu(dense(p["up"], _layer_norm(p["ln2"], x)))
    return x + dense(p["down"], hidden)


def make(context: int = 32, width: int = 32, layers: int = 2, heads: int = 2, steps: int = 300,
         batch_size: int = 12, valid_windows: int = 128, default_lr: float = 0.01,
         tier: str = "B", name: str = "char_transformer", text: str = "genesis") -> Task:
    if text not in ("genesis", "kjv"):
        raise ValueError(f"text must be 'genesis' or 'kjv', not {text!r}")

    def codes() -> tuple[np.ndarray, np.ndarray]:
        return corpus()[1:] if text == "genesis" else kjv_text.char_codes()

    vocab = len(corpus()[0] if text == "genesis" else kjv_text.alphabet())

    def init(key):
        k_embed, k_pos, k_out, k_blocks = jax.random.split(key, 4)
        return {
            "embed": jax.random.normal(k_embed, (vocab, width), jnp.float32),
            "position": 0.1 * jax.random.normal(k_pos, (context, width), jnp.float32),
            "blocks": [_block_init(k, width) for k in jax.random.split(k_blocks, layers)],
            "ln": _layer_norm_init(width),
            "out": dense_init(k_out, width, vocab, scale=0.1),
        }

    def loss(params, batch):
        tokens = batch["tokens"]
        x = params["embed"][tokens[:, :-1]] + params["position"]
        for block in params["blocks"]:
            x = _block(block, x, heads)
        logits = dense(params["out"], _layer_norm(params["ln"], x))
        return softmax_cross_entropy(logits, tokens[:, 1:])

    def train_batches(seed):
        train = codes()[0]
        starts = data_rng(seed, _SALT).integers(0, len(train) - context, (steps, batch_size))
        return {"tokens": train[starts[..., None] + np.arange(context + 1)]}

    def valid_batch():
        return {"tokens": kjv_text.spread_windows(codes()[1], valid_windows, context + 1)}

    return Task(
        name=name, family="transformer_lm", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"{layers}-layer, width {width}, {heads}-head causal transformer, "
                    f"next-character cross-entropy over {context}-character windows",
        data_source=("Genesis, " if text == "genesis" else "")
        + "King James Version (public domain), tasks/data/kjv.txt.gz")
