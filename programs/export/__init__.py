"""Export programs as standalone modules (optax, torch, numpy)."""
