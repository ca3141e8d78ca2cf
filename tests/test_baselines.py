"""Every baseline program against its reference implementation, step by step.

Each entry of ``programs.BASELINES`` is run through ``programs.as_optax`` side by side with its
reference (optax in float32; a float64 NumPy transcription of the published rule where no
library has it) on the same problem: a fixed-seed noisy quadratic over four tensors of
different rank, ``g = a * (w - c) + noise_t``, for ``STEPS`` steps.  Both sides compute their
gradient from their own parameters, so a difference compounds as it would in training.

Metric: ``max |w_prog - w_ref| / max(|w_ref|, SCALE)`` over every step, tensor and element.
The initial weights and the targets ``c`` are N(0, 1), so parameters are O(1) and
``SCALE = 1`` makes the metric relative for the typical entry and absolute (1e-5) for the
entries that pass near zero, where float32 cancellation makes a relative error meaningless.
Every learning rate is chosen so the reference moves the weights by O(1) (checked by
``MIN_TRAVEL``): an error of 1e-5 is then 1e-5 of the distance travelled, not of a weight that
barely moved.  ``test_comparison_has_teeth`` shows small perturbations of one constant fail.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from importlib import resources

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import optax_scan

import programs

STEPS = 150
SHAPES = ((1,), (7,), (5, 6), (3, 4, 5))
SCALE = 1.0
TOLERANCE = 1e-5
MIN_TRAVEL = 0.5
NOISE = 0.3


# -- the problem ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Problem:
    """Per tensor: initial weights ``w0``, curvature ``a`` > 0, target ``c``, noise per step."""

    w0: tuple[np.ndarray, ...]
    a: tuple[np.ndarray, ...]
    c: tuple[np.ndarray, ...]
    noise: tuple[np.ndarray, ...]  # each (STEPS, *shape)


def make_problem(seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    f32 = lambda x: np.asarray(x, np.float32)
    return Problem(
        w0=tuple(f32(rng.standard_normal(s)) for s in SHAPES),
        a=tuple(f32(rng.uniform(0.5, 2.0, s)) for s in SHAPES),
        c=tuple(f32(rng.standard_normal(s)) for s in SHAPES),
        noise=tuple(f32(NOISE * rng.standard_normal((STEPS,) + s)) for s in SHAPES),
    )


PROBLEM = make_problem()


def gradient(problem: Problem, params, noise_t):
    """The same expression for JAX float32 arrays and NumPy float64 arrays."""
    return tuple(a * (w - c) + n for w, a, c, n in zip(params, problem.a, problem.c, noise_t))


# -- runners: each returns the trajectory, a tuple of (STEPS, *shape) arrays ----------------------
def run_optax(opt: optax.GradientTransformation, problem: Problem, lookahead: bool = False):
    """Run ``opt`` in float32 with one jitted scan; ``lookahead`` holds (fast, slow) params and
    records the fast ones (where the gradient is taken and the programs' ``w``)."""
    w0 = tuple(jnp.asarray(w) for w in problem.w0)
    params0 = optax.LookaheadParams(fast=w0, slow=w0) if lookahead else w0
    view = (lambda p: p.fast) if lookahead else (lambda p: p)
    trajectory = optax_scan(opt, params0, lambda p, noise_t: gradient(problem, view(p), noise_t),
                            tuple(jnp.asarray(n) for n in problem.noise),
                            lambda p, state, g: view(p))
    return tuple(np.asarray(x) for x in trajectory)


def run_program(program: programs.Program, lr: float, problem: Problem):
    return run_optax(programs.as_optax(program, lr, total_steps=STEPS), problem)


def float64_start(problem: Problem):
    """``(w, m, v, history)`` of a float64 transcription: the initial weights, two zero
    moments per tensor, and an empty trajectory per tensor."""
    w = [np.asarray(x, np.float64) for x in problem.w0]
    return w, [np.zeros_like(x) for x in w], [np.zeros_like(x) for x in w], [[] for _ in w]


def float64_gradients(problem: Problem, w, step: int):
    """The gradients at ``w`` of step ``step`` (from 1), in float64."""
    return gradient(problem, w, [np.float64(n[step - 1]) for n in problem.noise])


def ranger_numpy(lr: float, problem: Problem, betas=(0.95, 0.999), eps=1e-5,
                 n_sma_threshold=5.0, k=6, alpha=0.5):
    """Ranger (Less Wright), transcribed in float64 from its published update rule: gradient
    centralisation for rank >= 2 (use_gc=True, gc_conv_only=False), RAdam with eps added to
    sqrt(v) and the sqrt(1 - b2^t) factor in the step size, lookahead every k steps; the slow
    buffer is a copy of the weights taken before the first step; weight_decay = 0."""
    b1, b2 = betas
    n_sma_max = 2.0 / (1.0 - b2) - 1.0
    w, m, v, history = float64_start(problem)
    slow = [x.copy() for x in w]
    for step in range(1, STEPS + 1):
        for i, g in enumerate(float64_gradients(problem, w, step)):
            if g.ndim > 1:
                g = g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True)
            v[i] = b2 * v[i] + (1.0 - b2) * g * g
            m[i] = b1 * m[i] + (1.0 - b1) * g
            b2t = b2 ** step
            n_sma = n_sma_max - 2.0 * step * b2t / (1.0 - b2t)
            if n_sma > n_sma_threshold:
                step_size = math.sqrt(
                    (1.0 - b2t) * (n_sma - 4.0) / (n_sma_max - 4.0) * (n_sma - 2.0) / n_sma
                    * n_sma_max / (n_sma_max - 2.0)) / (1.0 - b1 ** step)
                w[i] = w[i] - step_size * lr * m[i] / (np.sqrt(v[i]) + eps)
            else:
                w[i] = w[i] - lr / (1.0 - b1 ** step) * m[i]
            if step % k == 0:
                slow[i] = slow[i] + alpha * (w[i] - slow[i])
                w[i] = slow[i].copy()
            history[i].append(w[i].copy())
    return tuple(np.stack(h) for h in history)


def cautious_adam_numpy(lr: float, problem: Problem, b1=0.9, b2=0.999, eps=1e-8):
    """Cautious AdamW (Liang et al. 2024) without weight decay, transcribed in float64 from the
    authors' step: Adam's normalised update times ``mask * numel / (mask.sum() + 1)`` per
    tensor, ``mask = (exp_avg * grad > 0)``."""
    w, m, v, history = float64_start(problem)
    for step in range(1, STEPS + 1):
        for i, g in enumerate(float64_gradients(problem, w, step)):
            m[i] = b1 * m[i] + (1.0 - b1) * g
            v[i] = b2 * v[i] + (1.0 - b2) * g * g
            d = (m[i] / (1.0 - b1 ** step)) / (np.sqrt(v[i] / (1.0 - b2 ** step)) + eps)
            mask = (m[i] * g > 0).astype(np.float64)
            mask = mask * (mask.size / (mask.sum() + 1.0))
            w[i] = w[i] - lr * d * mask
            history[i].append(w[i].copy())
    return tuple(np.stack(h) for h in history)


# -- the reference table -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Reference:
    """``cite``: how the program file's header names it; ``run(lr, problem)`` -> trajectory."""

    cite: str
    lr: float
    run: Callable
    tolerance: float = TOLERANCE


def _optax(cite: str, lr: float, make: Callable[[float], optax.GradientTransformation],
           lookahead: bool = False) -> Reference:
    return Reference(cite, lr, lambda lr_, problem: run_optax(make(lr_), problem, lookahead))


ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": 0.0}

REFERENCES: dict[str, Reference] = {
    "sgd": _optax("optax.sgd", 0.1, lambda lr: optax.sgd(lr, momentum=None, nesterov=False)),
    "momentum": _optax("optax.sgd", 0.02, lambda lr: optax.sgd(lr, momentum=0.9)),
    "nesterov": _optax(
        "optax.sgd", 0.02, lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True)),
    "adagrad": _optax("optax.adagrad", 0.3, lambda lr: optax.adagrad(
        lr, initial_accumulator_value=0.1, eps=1e-7)),
    "rmsprop": _optax("optax.rmsprop", 0.01, lambda lr: optax.rmsprop(
        lr, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, centered=False,
        momentum=None, bias_correction=False)),
    "adadelta": _optax("optax.adadelta", 20.0, lambda lr: optax.adadelta(
        lr, rho=0.9, eps=1e-6, weight_decay=0.0)),
    "adam": _optax("optax.adam", 0.03, lambda lr: optax.adam(lr, **ADAM)),
    "adamw": _optax("optax.adamw", 0.03, lambda lr: optax.adamw(
        lr, **ADAM, weight_decay=1e-4)),
    "nadam": _optax("optax.nadam", 0.03, lambda lr: optax.nadam(lr, **ADAM)),
    "radam": _optax("optax.radam", 0.03, lambda lr: optax.radam(lr, **ADAM, threshold=5.0)),
    "lion": _optax("optax.lion", 0.01, lambda lr: optax.lion(
        lr, b1=0.9, b2=0.99, weight_decay=0.0)),
    "signsgd": _optax("optax.sign_sgd", 0.01, lambda lr: optax.sign_sgd(lr)),
    "lookahead": _optax("optax.lookahead", 0.05, lambda lr: optax.lookahead(
        optax.adam(lr, **ADAM), sync_period=5, slow_step_size=0.5, reset_state=False),
        lookahead=True),
    "ranger": Reference("NumPy transcription", 0.05, ranger_numpy),
    # The mask is a step function of m * g: where that is near 0, float32 and float64 can keep
    # different entries, which rescales the whole tensor.  The same rule in float32 NumPy is
    # 4e-7 from the program and 1.5e-5 from this float64 one: float32's, not the program's.
    "cautious_adam": Reference("NumPy transcription", 0.03, cautious_adam_numpy,
                               tolerance=3e-5),
    "ademamix": _optax("optax.contrib.ademamix", 0.01, lambda lr: optax.contrib.ademamix(
        lr, b1=0.9, b2=0.999, b3=0.999, alpha=5.0, eps=1e-8, weight_decay=0.0)),
    "adam_warmup_cosine": _optax(
        "optax.warmup_cosine_decay_schedule", 0.05, lambda lr: optax.adam(
            optax.warmup_cosine_decay_schedule(
                init_value=0.0, peak_value=lr, warmup_steps=STEPS // 10, decay_steps=STEPS,
                end_value=0.0, exponent=1.0), **ADAM)),
}

REQUIRED = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw",
            "nadam", "radam", "lion", "signsgd", "lookahead", "ranger", "adam_warmup_cosine",
            "cautious_adam", "ademamix"}


def relative_error(actual, expected) -> float:
    """``max |a - b| / max(|b|, SCALE)`` over all steps, tensors and elements."""
    return max(float(np.max(np.abs(a - b) / np.maximum(np.abs(b), SCALE)))
               for a, b in zip(actual, expected))


def travel(trajectory, problem: Problem) -> float:
    """Largest distance any weight moved from its start, at any step."""
    return max(float(np.max(np.abs(x - w0))) for x, w0 in zip(trajectory, problem.w0))


_reference_cache: dict[str, tuple] = {}


def reference_trajectory(name: str):
    if name not in _reference_cache:
        ref = REFERENCES[name]
        _reference_cache[name] = ref.run(ref.lr, PROBLEM)
    return _reference_cache[name]


# -- tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_baseline_matches_reference(name):
    if name not in REFERENCES:
        pytest.fail(f"baseline {name!r} has no reference in tests/test_baselines.py")
    expected = reference_trajectory(name)
    assert travel(expected, PROBLEM) >= MIN_TRAVEL, "the problem does not exercise the optimizer"
    actual = run_program(programs.BASELINES[name], REFERENCES[name].lr, PROBLEM)
    error = relative_error(actual, expected)
    print(f"{name}: max relative error {error:.2e} over {STEPS} steps")
    tolerance = REFERENCES[name].tolerance
    assert error <= tolerance, f"{name}: relative error {error:.3g} > {tolerance}"


def test_library_has_the_required_baselines():
    assert REQUIRED <= set(programs.BASELINES)
    assert set(REFERENCES) <= set(programs.BASELINES), "reference for a baseline that is gone"


def _header(name: str) -> str:
    text = resources.files("programs.library").joinpath(f"{name}.opt").read_text("utf-8")
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    return " ".join(lines)


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_header_names_its_reference(name):
    header = _header(name)
    assert "Reference:" in header, f"{name}.opt: no '# Reference:' line in the header comment"
    if name in REFERENCES:
        cite = REFERENCES[name].cite
        assert cite in header, f"{name}.opt: header does not name the test's reference {cite!r}"


def perturb(program: programs.Program, old: float, new: float) -> programs.Program:
    """``program`` with the first constant equal to ``old`` replaced by ``new``."""
    body = list(program.body)
    for i, s in enumerate(body):
        if old in s.args:
            args = tuple(new if a == old and not isinstance(a, str) else a for a in s.args)
            body[i] = dataclasses.replace(s, args=args)
            return program.replace(body=tuple(body))
    raise AssertionError(f"{program.name} has no constant {old}")


@pytest.mark.parametrize("name, old, new", [
    ("adam", 0.999, 0.998),           # second-moment decay
    ("lion", 0.99, 0.98),             # momentum decay behind the sign
    ("lookahead", 5.0, 4.0),          # sync period
    ("ranger", 1e-05, 1e-04),         # eps next to sqrt(v)
    ("adam_warmup_cosine", 3.141592653589793, 3.14),  # the cosine's argument, by 0.05%
    ("cautious_adam", 0.0, 1e-4),     # the mask: m * g above 1e-4, not 0
    ("ademamix", 5.0, 4.0),           # alpha, the slow momentum's weight
])
def test_comparison_has_teeth(name, old, new):
    wrong = perturb(programs.BASELINES[name], old, new)
    error = relative_error(run_program(wrong, REFERENCES[name].lr, PROBLEM),
                           reference_trajectory(name))
    assert error > 10 * REFERENCES[name].tolerance, f"perturbed {name} still matches (error {error:.3g})"
