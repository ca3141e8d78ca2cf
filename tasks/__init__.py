"""Jit-compiled JAX proxy training tasks (registry), the training loop and the data they ship."""
