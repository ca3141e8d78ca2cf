"""The cases, inputs, recordings and comparison shared by the export tests.

See ``tests/export/conftest.py`` for what is run and how it is judged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import programs
from programs.ops import OPS
from programs.program import Program, Statement

STEPS = 100
LR = 0.05
SHAPES = {"kernel": (3, 2, 2), "bias": (5,), "gain": ()}
RTOL = 1e-5
WINDOW = 3
N_MUTATED = 50
TARGETS = ("optax", "torch", "numpy")
# Ops whose float32 results may differ in the last place between XLA, PyTorch and NumPy:
# libraries' own transcendental functions and summation orders, and XLA divides by a scalar
# as a multiply by its reciprocal.  + - * sqrt and the rest round the same everywhere.
NOISY_OPS = ("power", "exp", "expm1", "log", "log1p", "sin", "cos", "tan", "arcsin", "arccos",
             "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "sigmoid",
             "softplus", "erf", "rsqrt", "div", "mean", "norm", "rms", "center")
ULP_FACTOR = 4
RUFF = Path(sys.executable).with_name("ruff")


# -- the programs --------------------------------------------------------------------------------
def coverage_programs() -> dict[str, Program]:
    """Every op, with operands that reach each code path: tensors, 0-d scalars, constants in
    every position (zero denominators, constant bases and bounds, constant conditions).  Each
    result is a state slot, so every op's value is compared at every step."""
    ops = list(OPS)
    out = {}
    for k in range(0, len(ops), 8):
        body = [Statement("x", "mul", ("t", 0.3)), Statement("y", "sub", ("x", 3.0))]
        slots = []
        for op in ops[k:k + 8]:
            arity = OPS[op].arity
            if arity == 1:
                forms = [("g",), ("y",), (0.5,)]
            elif arity == 2:
                forms = [("g", f"a_{op}"), ("w", 0.0), (-2.0, "g"), ("y", "lr")]
            elif op == "where":
                forms = [("g", "w", f"a_{op}"), (0.5, "g", "w"), ("g", 1.0, -1.0)]
            else:
                forms = [("g", f"a_{op}", "lr"), ("g", f"b_{op}", 0.9), ("w", f"c_{op}", 1.5)]
            for prefix, args in zip("abcd", forms):
                body.append(Statement(f"{prefix}_{op}", op, args))
                slots.append(f"{prefix}_{op}")
        body.append(Statement("u", "mul", ("g", "lr")))
        name = f"cover{k // 8}"
        out[name] = Program(name, ("w", "g", "lr", "t", *slots), tuple(body),
                            ("u", *slots)).checked()
    return out


# Names that collide with what the generated code uses (modules, helpers, state keys), and a
# 32-character name (the longest the layout promises to keep ruff-format clean).
AWKWARD_NAMES = programs.parse("""\
def jax(w, g, lr, t, T, jnp, np, torch, _sat, count, step, slots, state, dtype,
        a_name_of_exactly_thirty_two_chr):
    _step = interp(g, jnp, 0.9)
    out = _step / (sqrt(np) + 1e-8)
    np = interp(square(g), np, 0.99)
    torch = max(torch, abs(g))
    _sat = -_sat + g * t / T
    count = count + 1.0
    step = where(count > 50.0, out, _step)
    slots = slots * 0.5 + w
    state = mean(state) + center(g) + slots
    dtype = sign(g) - dtype
    a_name_of_exactly_thirty_two_chr = a_name_of_exactly_thirty_two_chr * 0.9 + dtype
    bc = 1.0 - t * 0.02
    _scalars = bc * lr
    bc_safe = g / bc
    u = (step + a_name_of_exactly_thirty_two_chr * 1e-3 + _sat * 1e-6 + bc_safe * 1e-3
         + _scalars) * lr
    return (u, _step, np, torch, _sat, count, step, slots, state, dtype,
            a_name_of_exactly_thirty_two_chr)
""")


def mutated_programs() -> dict[str, Program]:
    """N_MUTATED children of the baselines, 1 to 4 mutations each, fixed seeds."""
    from programs.mutate import mutate
    names = sorted(programs.BASELINES)
    out = {}
    for i in range(N_MUTATED):
        rng = np.random.default_rng(20_000 + i)
        program = programs.BASELINES[names[i % len(names)]]
        for _ in range(1 + i % 4):
            child = mutate(program, rng).program
            program = child if child is not None else program
        out[f"mutated{i:02d}"] = program
    return out


# The update computed in the old buffer of a slot whose new value is another tensor: torch's
# step() must not let the slot's write clobber the update (a mutated lion found this).
UPDATE_IN_SLOT_BUFFER = programs.parse("""def update_in_slot_buffer(g, lr, m):
    tmp1 = 0.0403271 * g
    tmp2 = 0.9 * m
    u = tmp1 + tmp2
    m = rsqrt(tmp1)
    u = sign(u)
    m = 0.01 * g < 0.99 * m
    u = u * lr
    return u, m
""")

BASELINE_CASES = {f"baseline_{k}": v for k, v in programs.BASELINES.items()}
MUTATED_CASES = mutated_programs()
CASES: dict[str, Program] = {**BASELINE_CASES, **coverage_programs(),
                             "awkward_names": AWKWARD_NAMES,
                             "update_in_slot_buffer": UPDATE_IN_SLOT_BUFFER, **MUTATED_CASES}


# -- the inputs ----------------------------------------------------------------------------------
def make_inputs(seed: int, extreme: bool) -> dict[str, np.ndarray]:
    """N(0, 1) parameters; gradients N(0, 1), or, with ``extreme``, times 1e20 for "bias"
    (squares overflow: saturation) and times 1e-20 with 10% exact zeros for "gain" (squares
    underflow, denominators vanish: protection).  Each tensor is of one magnitude, so its
    largest entry is a fair scale for the rest (see assert_close)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for leaf, shape in SHAPES.items():
        arrays[f"p/{leaf}"] = rng.standard_normal(shape).astype(np.float32)
        g = rng.standard_normal((STEPS, *shape))
        if extreme and leaf == "bias":
            g = g * 1e20
        if extreme and leaf == "gain":
            g = np.where(rng.random(g.shape) < 0.1, 0.0, g * 1e-20)
        arrays[f"g/{leaf}"] = g.astype(np.float32)
    return arrays



RUNNER = Path(__file__).with_name("runner.py")
"""The script one subprocess per target runs (``runner.py TARGET ROOT``)."""


LIBRARY = {"optax": ["optax.adam", "optax.lion"], "torch": ["torch.Adam", "torch.Adam.foreach"]}


class Recordings:
    """What the runners recorded, by target; ``limited``: the cases compared with the float64
    interpreter too (see :func:`compare`)."""

    def __init__(self, root: Path, targets):
        self.root = root
        self.data, self.errors = {}, {}
        for target in targets:
            with np.load(root / f"{target}.npz") as f:
                self.data[target] = dict(f)
            self.errors[target] = json.loads((root / f"{target}.errors.json").read_text())
        self.limited: list[str] = []  # cases judged with the interpreter's sensitivity

    def tensors(self, target: str, cid: str) -> dict[str, np.ndarray]:
        if cid in self.errors[target]:
            pytest.fail(f"{target} run of {cid} raised:\n{self.errors[target][cid]}")
        prefix = f"{cid}/"
        return {k[len(prefix):]: v for k, v in self.data[target].items() if k.startswith(prefix)}

    def sensitivity(self, cid: str) -> dict[str, np.ndarray] | None:
        """For a limited case: per recorded value, how far the interpreter moves when every
        noisy op is moved one ulp (up or down); None for the other cases."""
        if cid not in self.limited:
            return None
        ref = self.tensors("reference", cid)
        up, down = self.tensors("ulp_up", cid), self.tensors("ulp_down", cid)
        out = {}
        for key, e in ref.items():
            moves = [np.abs(np.asarray(x[key], np.float64) - np.asarray(e, np.float64))
                     for x in (up, down)]
            out[key] = np.nan_to_num(np.maximum(*moves), nan=0.0, posinf=0.0)
        return out

    def fusion(self, cid: str) -> dict[str, np.ndarray]:
        """Per recorded value, how far the jitted interpreter is from the eager one: what
        XLA's contraction of a product and a sum into one FMA changes (much, where values
        cancel exactly), the freedom that separates the optax module from torch and NumPy."""
        jit, eager = self.tensors("reference", cid), self.tensors("eager", cid)
        return {key: np.nan_to_num(np.abs(np.asarray(e, np.float64)
                                          - np.asarray(eager[key], np.float64)),
                                   nan=0.0, posinf=0.0)
                for key, e in jit.items()}


# The interpreters each target is compared with: the optax module runs under jax.jit like the
# jitted interpreter (the same arithmetic, so the same FMA contractions); torch and NumPy run
# op by op like the eager one, or, where eager JAX flushes an intermediate subnormal that a
# fused XLA loop keeps (norms of 1e-20 gradients), like the jitted one.  Each recorded
# trajectory (params, each slot) must match one of them to RTOL throughout.
REFERENCES = {"optax": ("reference",), "torch": ("eager", "reference"),
              "numpy": ("eager", "reference")}


def problems_vs_interpreter(rec, target: str, cid: str, sensitivity=None) -> list[str]:
    """Recorded values (params, each slot) that match none of the target's interpreters."""
    actual = rec.tensors(target, cid)
    found = []
    for key, value in actual.items():
        per_ref = [compare({key: value}, {key: rec.tensors(ref, cid)[key]},
                           None if sensitivity is None else {key: sensitivity[key]})
                   for ref in REFERENCES[target]]
        if all(per_ref):
            found += [f"vs {ref}: {p[0]}" for ref, p in zip(REFERENCES[target], per_ref)]
    return found


def module_name(i: int) -> str:
    return f"exported_{i:03d}"


def run_targets(root: Path, targets) -> None:
    """One subprocess per target, in parallel; each records every case of the manifest."""
    env = dict(os.environ, OMP_NUM_THREADS="1", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false "
                         "--xla_backend_optimization_level=0 "
                         "--xla_llvm_disable_expensive_passes=true",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    procs = {t: subprocess.Popen([sys.executable, str(RUNNER), t, str(root)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for t in targets}
    for target, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{target} runner failed:\n{out.decode()[-3000:]}"


# -- comparison ----------------------------------------------------------------------------------
def magnitude(e: np.ndarray) -> np.ndarray:
    """Per step and element of a recorded trajectory ``e`` (steps first): the largest |e| in
    its tensor at that step, or in its own last ``WINDOW`` values (a value crossing zero
    inherits the rounding error of the magnitudes it came through)."""
    e = np.abs(e).reshape(e.shape[0], -1)
    tensor = np.max(e, axis=1, keepdims=True)
    window = np.max([np.roll(e, k, axis=0) * (np.arange(len(e)) >= k)[:, None]
                     for k in range(WINDOW)], axis=0)
    return np.maximum(tensor, window)


def compare(actual: dict, expected: dict, sensitivity: dict | None = None,
            rtol: float = RTOL) -> list[str]:
    """The problems found comparing recorded tensors (empty: they match).

    An element matches when ``|x - ref| <= rtol * max(|x|, magnitude)``.  With
    ``sensitivity`` (how far the interpreter moves when its noisy ops move one ulp), the
    bound grows by ``ULP_FACTOR`` times it: where a program amplifies last-place differences
    beyond ``rtol``, float32 does not determine its result to ``rtol``, whoever computes it.
    """
    if set(actual) != set(expected):
        return [f"recorded {sorted(actual)} vs reference {sorted(expected)}"]
    problems = []
    for key in sorted(expected):
        a = np.asarray(actual[key], np.float64)
        e = np.asarray(expected[key], np.float64)
        if a.shape != e.shape:
            problems.append(f"{key}: shape {a.shape} != {e.shape}")
            continue
        # Weights may leave float32 (w - update is not an op, so it is not saturated).
        finite = np.isfinite(e)
        if not np.array_equal(np.isfinite(a), finite) or not np.array_equal(
                a[~finite], e[~finite], equal_nan=True):
            problems.append(f"{key}: Inf or NaN differ")
            continue
        a = np.where(finite, a, 0.0).reshape(len(a), -1)
        e = np.where(finite, e, 0.0).reshape(len(e), -1)
        mag = magnitude(e)
        tol = rtol * np.maximum(np.abs(a), mag)
        if sensitivity is not None:
            tol = tol + ULP_FACTOR * sensitivity[key].reshape(len(e), -1)
        ok = np.abs(a - e) <= tol
        if not ok.all():
            excess = np.where(ok, 0.0, np.abs(a - e) / tol)
            step, i = np.unravel_index(np.argmax(excess), e.shape)
            problems.append(
                f"{key}: {int(np.sum(~ok))} of {e.size} values differ by more than {rtol:g} "
                f"of their magnitude; worst at step {step + 1}, element {i}: {a[step, i]!r} "
                f"vs reference {e[step, i]!r} (magnitude {mag[step, i]:.3g})")
    return problems


def assert_trajectories_close(actual: dict, expected: dict, what: str,
                              sensitivity=None) -> None:
    """No recorded value of ``actual`` is outside :func:`compare`'s bound from ``expected``."""
    problems = compare(actual, expected, sensitivity)
    assert not problems, f"{what}: " + "; ".join(problems)


def run_numpy_module(module, data, total=None):
    params = {k: data[f"p/{k}"] for k in SHAPES}
    state = module.init(params, **(total or {}))
    trajectory = {f"p/{k}": [] for k in SHAPES}
    for i in range(STEPS):
        params, state = module.update({k: data[f"g/{k}"][i] for k in SHAPES}, state, params, LR)
        for k in SHAPES:
            trajectory[f"p/{k}"].append(params[k])
    return {k: np.stack(v) for k, v in trajectory.items()}



def load_module(tmp_path, program, target, name, fast=False):
    path = tmp_path / f"{name}.py"
    path.write_text(programs.export(program, target, fast=fast))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


