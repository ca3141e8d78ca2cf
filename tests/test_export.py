"""programs.export: every target, run in fresh processes, against the interpreter.

What is run: every baseline (``programs.BASELINES``), coverage programs that apply every op
of the table with tensors, 0-d values and constants in each position, a program whose names
collide with what generated code uses, and ``N_MUTATED`` programs made by ``programs.mutate``
from the baselines with fixed seeds.  Each is exported to optax, torch and numpy; modules and
inputs are written to a temporary directory, and one subprocess per target (plus one for the
reference, ``programs.as_optax``, jitted) imports every module and records the parameters and
every state slot after each of ``STEPS`` steps.  The test process compares the recordings.

Inputs: three tensors of rank 3, 1 and 0; gradients N(0, 1), times 1e20 for the rank-1 tensor
(squares overflow: saturation) and times 1e-20, with exact zeros, for the 0-d one (squares
underflow, denominators vanish: protection).  The library comparisons (optax.adam,
optax.lion, torch.optim.Adam, which do not saturate) use N(0, 1) gradients everywhere.
XLA on CPU flushes subnormals to zero; the torch and NumPy runners do too
(``torch.set_flush_denormal``), so that platforms' denormal modes are not what is compared.

Metric, per recorded tensor, step and element: ``|x - ref| <= RTOL * max(|x|, magnitude)``,
where magnitude is the largest |ref| in the tensor at that step or in the element's last
``WINDOW`` steps (an entry left small by cancellation, like a weight crossing zero, is judged
against the magnitudes it was computed from).  NaN must match NaN and Inf match Inf (weights
are not saturated: w - update can overflow).  The optax module must moreover equal the
interpreter bit for bit (both leave out the same identity clips: the same XLA graph).

Float32 does not determine every program to RTOL: transcendental functions and sums differ in
the last place between XLA, PyTorch and NumPy, and a few programs amplify that (RAdam-like
rectifiers at small t).  A case that some target misses is run again by the interpreter with
those ops moved one ulp up, and down; there the bound grows by ``ULP_FACTOR`` times how far
that moves the interpreter.  Such cases are printed, and must stay few and not baselines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import programs
from programs.bounds import statement_facts
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
    try:
        from programs.mutate import mutate
    except ImportError:
        return {}
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


BASELINE_CASES = {f"baseline_{k}": v for k, v in programs.BASELINES.items()}
MUTATED_CASES = mutated_programs()
CASES: dict[str, Program] = {**BASELINE_CASES, **coverage_programs(),
                             "awkward_names": AWKWARD_NAMES, **MUTATED_CASES}


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


# -- the runner: one process per target ----------------------------------------------------------
RUNNER = textwrap.dedent('''
    """Import every exported module of one target and record params and slots per step."""
    import importlib.util, json, sys, traceback
    import numpy as np

    target, root = sys.argv[1], sys.argv[2]
    if target in ("torch", "numpy"):
        # XLA on CPU flushes subnormals to zero (FTZ and DAZ); give eager torch and NumPy the
        # same arithmetic on this thread (NumPy runs on it too), so that the comparison is of
        # the programs, not of the platforms' denormal modes.
        import torch
        torch.set_num_threads(1)
        assert torch.set_flush_denormal(True)
    manifest = json.load(open(f"{root}/manifest.json"))
    steps, lr, leaves = manifest["steps"], manifest["lr"], manifest["leaves"]
    manifest_noisy = manifest["noisy_ops"]
    if target in ("ulp_up", "ulp_down"):
        # The interpreter with every op that a library computes its own way (transcendental
        # functions, sums) moved one float32 ulp: how much the program amplifies the
        # differences between libraries.
        import dataclasses
        import jax.numpy as jnp
        from programs import ops
        towards = np.inf if target == "ulp_up" else -np.inf
        for name in manifest_noisy:
            def moved(*args, fn=ops.OPS[name].fn):
                y = fn(*args)
                return ops.saturate(jnp.nextafter(y, jnp.asarray(towards, y.dtype)))
            def moved_raw(*args, raw=ops.OPS[name].raw):
                y = raw(*args)
                return jnp.nextafter(y, jnp.asarray(towards, y.dtype))
            ops.OPS[name] = dataclasses.replace(ops.OPS[name], fn=moved, raw=moved_raw)
    INPUTS = {name: dict(np.load(f"{root}/{name}.npz")) for name in ("mixed", "plain")}
    results, errors = {}, {}


    def load(path):
        spec = importlib.util.spec_from_file_location(path.split("/")[-1][:-3], path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


    def save(cid, params, slots):
        for leaf in leaves:
            results[f"{cid}/p/{leaf}"] = np.asarray(params[leaf])
            for j, slot in enumerate(slots):
                results[f"{cid}/s{j}/{leaf}"] = np.asarray(slot[leaf])


    def run_optax(tx, get_slots, data):
        import jax, optax
        params = {k: jax.numpy.asarray(data["p/" + k]) for k in leaves}

        @jax.jit
        def step(params, state, grads):
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            return params, state, get_slots(state)

        state, traj = tx.init(params), []
        for i in range(steps):
            params, state, slots = step(params, state, {k: data["g/" + k][i] for k in leaves})
            traj.append((params, slots))
        params = {k: np.stack([np.asarray(p[k]) for p, _ in traj]) for k in leaves}
        slots = [{k: np.stack([np.asarray(s[j][k]) for _, s in traj]) for k in leaves}
                 for j in range(len(traj[0][1]))]
        return params, slots


    def run_torch(make, slot_keys, data):
        import torch
        ps = {k: torch.nn.Parameter(torch.tensor(data["p/" + k])) for k in leaves}
        opt = make(list(ps.values()))
        params, slots = {k: [] for k in leaves}, None
        for i in range(steps):
            for k, p in ps.items():
                p.grad = torch.tensor(data["g/" + k][i])
            opt.step()
            keys = slot_keys(opt.state[ps[leaves[0]]])
            slots = slots or [{k: [] for k in leaves} for _ in keys]
            for k, p in ps.items():
                params[k].append(p.detach().numpy().copy())
                for j, key in enumerate(keys):
                    slots[j][k].append(opt.state[p][key].numpy().copy())
        return params, slots or []


    def run_numpy(module, total, data):
        params = {k: data["p/" + k] for k in leaves}
        state = module.init(params, **total)
        traj, slots = {k: [] for k in leaves}, None
        for i in range(steps):
            grads = {k: data["g/" + k][i] for k in leaves}
            params, state = module.update(grads, state, params, lr)
            names = list(state["slots"])
            slots = slots or [{k: [] for k in leaves} for _ in names]
            for k in leaves:
                traj[k].append(params[k])
                for j, name in enumerate(names):
                    slots[j][k].append(state["slots"][name][k])
        return traj, slots or []


    def run_case(case):
        total = {"total_steps": steps} if case["total"] else {}
        data = INPUTS[case["inputs"]]
        if target in ("reference", "eager", "ulp_up", "ulp_down"):
            import jax
            import programs
            tx = programs.as_optax(programs.parse(case["text"]), lr, **total)
            if target == "eager":  # op by op: each op rounds on its own, as torch and NumPy
                with jax.disable_jit():
                    return run_optax(tx, lambda s: s.slots, data)
            return run_optax(tx, lambda s: s.slots, data)
        path = f"{root}/{target}/{case['module']}.py"
        module = load(path)
        public = getattr(module, module.__all__[0])
        if target == "optax":
            return run_optax(public(lr, **total), lambda s: tuple(s[0])[1:], data)
        if target == "torch":
            make = lambda ps: public(ps, lr=lr, **total)
            return run_torch(make, lambda st: [k for k in st if k != "step"], data)
        return run_numpy(module, total, data)


    def run_library(name):
        """The libraries' own optimizers, on the plain inputs."""
        data = INPUTS["plain"]
        if name == "optax.adam":
            import optax
            return run_optax(optax.adam(lr), lambda s: (s[0].mu, s[0].nu), data)
        if name == "optax.lion":
            import optax
            return run_optax(optax.lion(lr, weight_decay=0.0), lambda s: (s[0].mu,), data)
        import torch
        foreach = name.endswith("foreach")
        make = lambda ps: torch.optim.Adam(ps, lr=lr, foreach=foreach)
        return run_torch(make, lambda st: ["exp_avg", "exp_avg_sq"], data)


    only = manifest.get("only", {}).get(target)
    for case in manifest["cases"]:
        if only is not None and case["id"] not in only:
            continue
        try:
            save(case["id"], *run_case(case))
        except Exception:
            errors[case["id"]] = traceback.format_exc(limit=-3)
    for name in manifest["library"].get(target, []):
        save(name, *run_library(name))
    np.savez(f"{root}/{target}.npz", **results)
    json.dump(errors, open(f"{root}/{target}.errors.json", "w"))
''')


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
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 "
                         "--xla_backend_optimization_level=0 "
                         "--xla_llvm_disable_expensive_passes=true",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    procs = {t: subprocess.Popen([sys.executable, str(root / "runner.py"), t, str(root)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for t in targets}
    for target, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{target} runner failed:\n{out.decode()[-3000:]}"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Recordings:
    root = tmp_path_factory.mktemp("export")
    np.savez(root / "mixed.npz", **make_inputs(0, extreme=True))
    np.savez(root / "plain.npz", **make_inputs(1, extreme=False))
    cases = []
    for i, (cid, program) in enumerate(CASES.items()):
        cases.append({"id": cid, "module": module_name(i), "text": str(program),
                      "total": "T" in program.params, "inputs": "mixed"})
    for name in ("adam", "lion"):  # the baselines again, on the inputs the libraries share
        cases.append({"id": f"plain_{name}", "module": module_name(len(cases)),
                      "text": str(programs.BASELINES[name]), "total": False, "inputs": "plain"})
    for target in TARGETS:
        (root / target).mkdir()
        for case in cases:
            program = programs.parse(case["text"])
            source = programs.export(program, target, run="tests/test_export", search_score=1.5)
            (root / target / f"{case['module']}.py").write_text(source)
    manifest = {"steps": STEPS, "lr": LR, "leaves": list(SHAPES), "cases": cases,
                "library": LIBRARY, "noisy_ops": NOISY_OPS}
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "runner.py").write_text(RUNNER)
    run_targets(root, ("reference", "eager", *TARGETS))
    rec = Recordings(root, ("reference", "eager", *TARGETS))
    # Cases some target does not match to RTOL are run again by the interpreter, its noisy
    # ops moved one ulp up and down: the program's own sensitivity to last-place differences.
    for case in cases:
        cid = case["id"]
        failed = [rec.errors[t] for t in ("reference", "eager", *TARGETS)]
        if any(cid in errors for errors in failed):
            continue  # reported by the tests
        if (any(problems_vs_interpreter(rec, t, cid) for t in TARGETS)
                or compare(rec.tensors("torch", cid), rec.tensors("optax", cid),
                           rec.fusion(cid))):
            rec.limited.append(cid)
    if rec.limited:
        manifest["only"] = {"ulp_up": rec.limited, "ulp_down": rec.limited}
        (root / "manifest.json").write_text(json.dumps(manifest))
        run_targets(root, ("ulp_up", "ulp_down"))
        for target in ("ulp_up", "ulp_down"):
            rec.data[target] = dict(np.load(root / f"{target}.npz"))
            rec.errors[target] = json.loads((root / f"{target}.errors.json").read_text())
    return rec


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


def assert_close(actual: dict, expected: dict, what: str, sensitivity=None) -> None:
    problems = compare(actual, expected, sensitivity)
    assert not problems, f"{what}: " + "; ".join(problems)


@pytest.mark.parametrize("cid", list(CASES))
@pytest.mark.parametrize("target", TARGETS)
def test_export_matches_interpreter(recordings, target, cid):
    assert recordings.tensors(REFERENCES[target][0], cid), f"no reference recorded for {cid}"
    problems = problems_vs_interpreter(recordings, target, cid, recordings.sensitivity(cid))
    assert not problems, f"{target} {cid}: " + " | ".join(problems)


@pytest.mark.parametrize("cid", list(CASES))
def test_torch_matches_optax(recordings, cid):
    """Within RTOL, where XLA's FMA contractions move the jitted interpreter by less."""
    allowance = recordings.fusion(cid)
    ulp = recordings.sensitivity(cid)
    if ulp is not None:
        allowance = {k: v + ulp[k] for k, v in allowance.items()}
    assert_close(recordings.tensors("torch", cid), recordings.tensors("optax", cid),
                 f"torch vs optax {cid}", allowance)


def test_sensitive_cases_are_few_and_named(recordings):
    """The cases judged with the interpreter's one-ulp sensitivity: few, none a baseline,
    each printed (pytest -rA), and each one where that sensitivity exceeds RTOL somewhere."""
    print("cases judged with the interpreter's one-ulp sensitivity:", recordings.limited)
    assert len(recordings.limited) <= 3, recordings.limited
    assert not [c for c in recordings.limited if c.startswith(("baseline_", "cover", "plain"))]
    for cid in recordings.limited:
        ref, sens = recordings.tensors("reference", cid), recordings.sensitivity(cid)
        worst = max(np.max(sens[k].reshape(len(sens[k]), -1)
                           / np.maximum(magnitude(np.nan_to_num(np.asarray(ref[k], float),
                                                                posinf=0.0, neginf=0.0)),
                                        1e-300))
                    for k in ref)
        assert worst > RTOL, f"{cid}: one-ulp sensitivity {worst:.2g} is below {RTOL}"


def test_mutated_programs_are_covered():
    """The 50 mutated programs exist (programs.mutate is there) and are distinct."""
    assert len(MUTATED_CASES) == N_MUTATED, "programs.mutate is not available"
    assert len({str(p) for p in MUTATED_CASES.values()}) >= N_MUTATED - 5


@pytest.mark.parametrize("target,library,program", [
    ("optax", "optax.adam", "adam"), ("torch", "optax.adam", "adam"),
    ("numpy", "optax.adam", "adam"), ("optax", "optax.lion", "lion"),
    ("torch", "optax.lion", "lion"), ("numpy", "optax.lion", "lion"),
    ("torch", "torch.Adam", "adam"), ("torch", "torch.Adam.foreach", "adam"),
])
def test_exported_baseline_matches_library(recordings, target, library, program):
    """Exported adam and lion against optax.adam, optax.lion(weight_decay=0) and
    torch.optim.Adam (foreach off and on), on the plain inputs."""
    lib_target = "optax" if library.startswith("optax") else "torch"
    expected = recordings.tensors(lib_target, library)
    actual = recordings.tensors(target, f"plain_{program}")
    assert_close(actual, expected, f"{target} {program} vs {library}")


def test_fast_export_computes_the_same_where_nothing_overflows(tmp_path, recordings):
    """fast=True drops every saturation: on ordinary inputs (no overflow) each baseline's fast
    numpy module follows the exact one over 100 steps, and fast adam and lion (optax, torch)
    match optax.adam, optax.lion and torch.optim.Adam as the exact exports do."""
    import jax
    import optax
    import torch

    data = make_inputs(1, extreme=False)
    for name, program in programs.BASELINES.items():
        total = {"total_steps": STEPS} if "T" in program.params else None
        exact = load_module(tmp_path, program, "numpy", f"exact_{name}")
        fast = load_module(tmp_path, program, "numpy", f"fast_{name}", fast=True)
        text = Path(fast.__file__).read_text()
        assert "FAST export" in text and "clip(x, -big, big)" not in text
        assert_close(run_numpy_module(fast, data, total), run_numpy_module(exact, data, total),
                     f"fast numpy {name}")
    params0 = {k: data[f"p/{k}"] for k in SHAPES}
    for name, library in (("adam", "optax.adam"), ("lion", "optax.lion")):
        module = load_module(tmp_path, programs.BASELINES[name], "optax", f"fast_optax_{name}",
                             fast=True)
        tx = getattr(module, name)(LR)
        params = jax.tree.map(jax.numpy.asarray, params0)
        state = tx.init(params)
        def update(p, s, g, tx=tx):
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s

        step = jax.jit(update)
        trajectory = {f"p/{k}": [] for k in SHAPES}
        for i in range(STEPS):
            params, state = step(params, state, {k: data[f"g/{k}"][i] for k in SHAPES})
            for k in SHAPES:
                trajectory[f"p/{k}"].append(np.asarray(params[k]))
        expected = {k: v for k, v in recordings.tensors("optax", library).items()
                    if k.startswith("p/")}
        assert_close({k: np.stack(v) for k, v in trajectory.items()}, expected,
                     f"fast optax {name} vs {library}")
    module = load_module(tmp_path, programs.BASELINES["adam"], "torch", "fast_torch_adam",
                         fast=True)
    ps = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in params0.items()}
    opt = module.Adam(list(ps.values()), lr=LR)
    trajectory = {f"p/{k}": [] for k in SHAPES}
    for i in range(STEPS):
        for k, p in ps.items():
            p.grad = torch.tensor(data[f"g/{k}"][i])
        opt.step()
        for k, p in ps.items():
            trajectory[f"p/{k}"].append(p.detach().numpy().copy())
    expected = {k: v for k, v in recordings.tensors("torch", "torch.Adam").items()
                if k.startswith("p/")}
    assert_close({k: np.stack(v) for k, v in trajectory.items()}, expected,
                 "fast torch adam vs torch.optim.Adam")


def test_fast_export_overflows_where_the_exact_one_saturates(tmp_path):
    program = programs.parse("def big(g, lr):\n    u = g * 1e30\n    u = u * 1e30\n"
                             "    return u\n")
    exact = load_module(tmp_path, program, "numpy", "big_exact")
    fast = load_module(tmp_path, program, "numpy", "big_fast", fast=True)
    params = {"w": np.zeros(2, np.float32)}
    grads = {"w": np.ones(2, np.float32)}
    with np.errstate(over="ignore"):
        p_exact, _ = exact.update(grads, exact.init(params), params, 1.0)
        p_fast, _ = fast.update(grads, fast.init(params), params, 1.0)
    assert np.all(p_exact["w"] == -np.finfo(np.float32).max)
    assert np.all(np.isneginf(p_fast["w"]))


def run_numpy_module(module, data, total=None):
    params = {k: data[f"p/{k}"] for k in SHAPES}
    state = module.init(params, **(total or {}))
    trajectory = {f"p/{k}": [] for k in SHAPES}
    for i in range(STEPS):
        params, state = module.update({k: data[f"g/{k}"][i] for k in SHAPES}, state, params, LR)
        for k in SHAPES:
            trajectory[f"p/{k}"].append(params[k])
    return {k: np.stack(v) for k, v in trajectory.items()}


def test_comparison_has_teeth(tmp_path):
    """Adam with beta2 = 0.9991 instead of 0.999 is caught; Adam against itself is not."""
    data = make_inputs(1, extreme=False)
    adam = programs.BASELINES["adam"]
    changed = programs.parse(str(adam).replace("0.999 *", "0.9991 *"))
    assert changed != adam
    runs = [run_numpy_module(load_module(tmp_path, p, "numpy", f"teeth{i}"), data)
            for i, p in enumerate((adam, changed))]
    assert compare(runs[1], runs[0]) and not compare(runs[0], runs[0])


# -- the modules' text -------------------------------------------------------------------------
@pytest.mark.skipif(not RUFF.exists(), reason="ruff is not installed next to this Python")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_modules_pass_ruff(recordings, command):
    """Every generated module, with ruff's default settings (what a user's project starts
    from), including the line length of 88."""
    dirs = [str(recordings.root / t) for t in TARGETS]
    proc = subprocess.run([str(RUFF), *command, "--isolated", "--no-cache", *dirs],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("target", TARGETS)
def test_module_text(target):
    program = programs.BASELINES["adam"]
    source = programs.export(program, target, run='runs/x"""\\', search_score=0.25,
                             held_out_score=0.5)
    doc = source.split('"""', 2)[1]
    assert str(program).splitlines()[1].strip() in doc     # the program's text
    assert "search score: 0.25" in doc and "held-out score: 0.5" in doc
    assert "Usage::" in doc
    compile(source, "<export>", "exec")   # the provenance's quotes and backslash are escaped
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    allowed = {"optax": ("typing", "jax", "optax"), "torch": ("torch",), "numpy": ("numpy",)}
    assert all(line.split()[1].split(".")[0] in allowed[target] for line in imports), imports
    assert "programs" not in "\n".join(imports)
    body = source.split('"""', 2)[2]
    for s in program.body:  # one line per statement, with the program's names
        assert f"    {s.target} = " in body
    assert "_erf" not in body and "_center" not in body  # helpers only for the ops used


@pytest.mark.parametrize("target", TARGETS)
def test_constants_round_trip_exactly(target):
    """The constants in the generated _step are the program's, bit for bit."""
    import ast

    c = (0.1 + 0.2, 1.2345678901234568e-300, 3.0000000000000002e200, -7.25e-05)
    program = programs.parse(f"def p(g, lr):\n    u = g * {c[0]!r} + {c[1]!r}\n"
                             f"    u = u * {c[2]!r} - {c[3]!r}\n    return u\n")
    tree = ast.parse(programs.export(program, target))
    step = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_step")
    negated = {id(n.operand) for n in ast.walk(step)
               if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub)}
    found = [-n.value if id(n) in negated else n.value for n in ast.walk(step)
             if isinstance(n, ast.Constant) and isinstance(n.value, float)]
    assert sorted(found) == sorted(c)


def test_dead_statements_become_comments():
    program = programs.parse("def p(g, lr):\n    x = sin(g)\n    u = g * lr\n    return u\n")
    source = programs.export(program, "torch")
    assert "# dead (never read): x = sin(g)" in source
    assert "torch.sin" not in source


STORED = programs.parse("""\
def p(g, lr, m, v):
    m = m * 3.0 + g
    m = m * 3.0 + g
    v2 = v * 3.0 + g
    w2 = v * 3.0 + g
    u = lr * (m + v2)
    return u, m, v2
""")


def test_returned_slot_values_read_later_are_stored_once():
    """Only the statement writing a slot's returned value, when a later one reads it, is
    marked stored; the optax module spells its saturation _sat_stored, torch does not."""
    facts = statement_facts(STORED)
    assert [s.target for s, f in zip(STORED.body, facts) if f.stored] == ["m", "v2"]
    assert not any(f.stored for f in statement_facts(programs.BASELINES["lion"]))
    source = programs.export(STORED, "optax")
    assert source.count("m = _sat_stored(") == 1 and "v2 = _sat_stored(" in source
    assert "w2 = _sat_stored(" not in source  # not returned
    assert "_sat_stored" not in programs.export(STORED, "torch")
    fast = programs.export(STORED, "optax", fast=True)  # there, a select that saturates nothing
    assert "m = _sat_stored(" in fast and "jnp.where(x > jnp.finfo(x.dtype).max, jnp.inf, x)" in fast


BLIND_READERS = programs.parse("""\
def p(g, lr, m):
    a = g * 3.0 + m
    b = g * 5.0 + m
    u = sign(a) * lr + sign(b) * b
    m = g * 2.0 + m
    return u, m
""")


def test_saturation_read_only_where_it_cannot_be_seen_is_left_out():
    """a is read only by sign (sign(Inf) == sign(MAX)): not saturated; b is also read by a
    product, and the returned m is returned: both saturated (the export tests check values)."""
    facts = dict(zip((s.target for s in BLIND_READERS.body), statement_facts(BLIND_READERS)))
    assert not facts["a"].saturate and facts["b"].saturate and facts["m"].saturate
    source = programs.export(programs.BASELINES["lion"], "optax")
    assert "    u = tmp1 + tmp2\n" in source and "    m = _sat(tmp3 + tmp4)\n" in source


def test_torch_runs_scalar_statements_once_per_parameter():
    """Statements that read only lr, t, T and constants go to _scalars (once per parameter),
    a protected 0-d denominator is protected there; the rest stay in _step, one line each."""
    source = programs.export(programs.BASELINES["adam"], "torch")
    scalars = source[source.index("def _scalars("):source.index("def _step(")]
    step = source[source.index("def _step("):source.index("class Adam")]
    for line in ("tmp6 = _sat(_pow64(0.9, t))", "tmp9 = 1.0 - tmp8",
                 "return _safe(tmp7), _safe(tmp9)"):
        assert line in scalars
    assert "def _step(g, lr, t, m, v, tmp7_safe, tmp9_safe):" in step
    assert "m_hat = _sat(m / tmp7_safe)" in step and "_pow64" not in step
    assert "hoisted = _scalars(*scalars)" in source
    # a program with no 0-d statement has no _scalars; names collide safely (AWKWARD_NAMES)
    assert "_scalars" not in programs.export(programs.BASELINES["sgd"], "torch")
    awkward = programs.export(AWKWARD_NAMES, "torch")
    assert "def _scalars(lr, t, T):" in awkward and "bc_safe_" in awkward


def test_torch_step_computes_new_moments_in_the_slots_buffers(tmp_path):
    """m = 0.1 g + 0.9 m: the sum is taken into the buffer that holds 0.9 m (the slot's), so
    that step() has nothing to copy into the state (one pass less per slot and piece)."""
    import torch

    module = load_module(tmp_path, programs.BASELINES["adam"], "torch", "adam_buffers")
    g, m, v = (torch.rand(10) for _ in range(3))
    lr, t = torch.tensor(1e-3), torch.tensor(3.0)
    out = module._step(g, lr, t, m, v, *module._scalars(lr, t))
    assert out[1] is m and out[2] is v


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown export target"):
        programs.export(programs.BASELINES["sgd"], "tensorflow")
    with pytest.raises(TypeError):
        programs.export(str(programs.BASELINES["sgd"]), "numpy")
    bad = Program("p", ("g", "lr"), (Statement("u", "mul", ("g", "nope")),), ("u",))
    with pytest.raises(programs.ProgramError):
        programs.export(bad, "optax")
    ligature = Program("p", ("g", "lr", "\ufb01"), (Statement("u", "mul", ("g", "lr")),),
                       ("u", "\ufb01"))
    with pytest.raises(programs.ProgramError, match="reads the name"):
        programs.export(ligature, "optax")


# -- behaviour of the modules in this process --------------------------------------------------
def load_module(tmp_path, program, target, name, fast=False):
    path = tmp_path / f"{name}.py"
    path.write_text(programs.export(program, target, fast=fast))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_optax_module_takes_a_schedule(tmp_path):
    import jax
    import jax.numpy as jnp
    import optax

    module = load_module(tmp_path, programs.BASELINES["adam"], "optax", "adam_sched")
    schedule = optax.linear_schedule(0.1, 0.01, 5)
    params = {"w": jnp.arange(6.0).reshape(2, 3)}
    grads = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)}
    out = []
    for tx in (module.adam(schedule), programs.as_optax(programs.BASELINES["adam"], schedule)):
        p, state = params, tx.init(params)
        update = jax.jit(tx.update)  # as the interpreter is meant to run: XLA, fused
        for _ in range(4):
            u, state = update(grads, state, p)
            p = optax.apply_updates(p, u)
        out.append(np.asarray(p["w"]))
    np.testing.assert_array_equal(out[0], out[1])
    assert module.__all__ == ["adam"]


def test_optax_module_needs_what_the_program_reads(tmp_path):
    import jax.numpy as jnp

    adamw = load_module(tmp_path, programs.BASELINES["adamw"], "optax", "adamw_x")
    tx = adamw.adamw(0.1)
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="pass params"):
        tx.update(params, tx.init(params))
    cosine = load_module(tmp_path, programs.BASELINES["adam_warmup_cosine"], "optax", "awc")
    with pytest.raises(TypeError):
        cosine.adam_warmup_cosine(0.1)  # total_steps is required
    with pytest.raises(ValueError, match="total_steps"):
        cosine.adam_warmup_cosine(0.1, 0)


# What XLA makes of a jitted training step: bytes read and written (its cost analysis, a
# property of the compiled graph, not a timing).  Parameters and state are donated, as in a
# training loop; a value computed twice, or an old slot value copied before it is overwritten,
# shows up as bytes.
def bytes_accessed(tx, params) -> float:
    import jax
    import optax

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    lowered = jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), params)
    cost = lowered.compile().cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["bytes accessed"]


def traffic_params():
    import jax.numpy as jnp

    return {"kernel": jnp.ones((64, 128)), "bias": jnp.ones((128,))}


def baseline_kwargs(program):
    return {"total_steps": 100} if "T" in program.params else {}


@pytest.mark.parametrize("name,library", [("adam", "adam"), ("lion", "lion")])
def test_exported_step_moves_no_more_memory_than_optax(tmp_path, name, library):
    import optax

    program = programs.BASELINES[name]
    # a few scalars (the count, the bias corrections) may be read once more: 64 bytes
    reference = bytes_accessed(getattr(optax, library)(1e-3), traffic_params()) + 64
    for fast in (False, True):
        module = load_module(tmp_path, program, "optax", f"{name}_{fast}", fast=fast)
        mine = bytes_accessed(getattr(module, name)(1e-3), traffic_params())
        assert mine <= reference, (fast, mine, reference)
    assert bytes_accessed(programs.as_optax(program, 1e-3), traffic_params()) <= reference


@pytest.mark.parametrize("source,arrays", [
    (("def p(g, lr, v):\n    v = abs(0.9 * v + g)\n    u = g / (sqrt(v) + 1e-8) * lr\n"
      "    return u, v\n"), 7),
    ("def p(g, lr, m):\n    m = -(0.9 * m + g)\n    u = m * lr\n    return u, m\n", 6)])
def test_new_slot_value_is_computed_once(tmp_path, source, arrays):
    """A slot's new value made by an op of one operand (abs, neg), read again: XLA would copy
    that op, and the sum under it, into the update's fusion.  Computed once, the step reads
    and writes each array once per fusion: the slot fusion reads the slot and g and writes the
    slot; the update fusion reads p, g (for abs) and the new slot, and writes p."""
    program = programs.parse(source)
    params = traffic_params()
    size = sum(x.size * x.dtype.itemsize for x in params.values())
    for fast in (False, True):
        tx = load_module(tmp_path, program, "optax", f"once_{fast}", fast=fast).p(1e-3)
        assert bytes_accessed(tx, params) <= arrays * size + 64, fast
    assert bytes_accessed(programs.as_optax(program, 1e-3), params) <= arrays * size + 64


@pytest.mark.parametrize("name", sorted(programs.BASELINES))
def test_saturation_costs_no_memory_traffic(tmp_path, name):
    """The exact module builds the interpreter's graph (same bytes) and moves hardly more
    memory than the fast one, which saturates nothing: a slot's new value is stored once, not
    recomputed by each reader (ops.saturate_stored).  Before that, 1.2-1.5x for 12 of 15."""
    program = programs.BASELINES[name]
    kw = baseline_kwargs(program)
    exact, fast = (bytes_accessed(getattr(load_module(tmp_path, program, "optax", f"m{f}",
                                                      fast=f), name)(1e-3, **kw),
                                  traffic_params())
                   for f in (False, True))
    assert bytes_accessed(programs.as_optax(program, 1e-3, **kw), traffic_params()) == exact
    assert exact <= 1.1 * fast, (exact, fast)


def test_torch_optimizer_behaviour(tmp_path):
    import torch

    module = load_module(tmp_path, programs.BASELINES["adam"], "torch", "adam_torch")
    assert module.__all__ == ["Adam"] and issubclass(module.Adam, torch.optim.Optimizer)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        module.Adam([torch.nn.Parameter(torch.zeros(2))], lr=-1.0)
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = module.Adam([a, b], lr=0.1)
    a.grad = torch.tensor([1.0, -2.0, 0.0])
    loss = opt.step(closure=lambda: torch.tensor(7.0))
    assert loss.item() == 7.0
    assert b not in opt.state and torch.equal(b, torch.ones(2))   # no grad: skipped
    assert opt.state[a]["step"] == 1 and set(opt.state[a]) == {"step", "m", "v"}
    np.testing.assert_allclose(a.detach().numpy(), [0.9, 1.1, 1.0], rtol=1e-6)
    reloaded = module.Adam([a, b], lr=0.1)
    reloaded.load_state_dict(opt.state_dict())
    assert torch.equal(reloaded.state[a]["m"], opt.state[a]["m"])
    cosine = load_module(tmp_path, programs.BASELINES["adam_warmup_cosine"], "torch", "awc_t")
    with pytest.raises(ValueError, match="total_steps"):
        cosine.AdamWarmupCosine([a], lr=0.1, total_steps=0)


SWAP = programs.parse("""\
def swap(w, g, lr, a, b):
    c = b + g
    u = c * lr + 0.001 * w
    b = a
    a = c
    return u, a, b
""")


@pytest.mark.parametrize("program", [programs.BASELINES["adam"], programs.BASELINES["lion"],
                                     SWAP], ids=["adam", "lion", "swap"])
def test_torch_pieces_match_whole_tensors(tmp_path, program):
    """step() on pieces of 4 elements (ragged last piece, slots that trade values) computes
    what it computes on whole tensors; a non-contiguous or non-CPU tensor is never cut."""
    import torch

    module = load_module(tmp_path, program, "torch", f"pieces_{program.name}")
    assert module._CHUNK == 2**18
    optimizer = getattr(module, module.__all__[0])
    rng = np.random.default_rng(3)
    start = [rng.standard_normal(s).astype(np.float32) for s in [(7, 5), (13,), ()]]
    grads = [[rng.standard_normal(x.shape).astype(np.float32) for x in start]
             for _ in range(12)]

    def run(chunk):
        module._CHUNK = chunk
        params = [torch.nn.Parameter(torch.tensor(x)) for x in start]
        opt = optimizer(params, lr=0.01)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = torch.tensor(g)
            opt.step()
        return [np.concatenate([p.detach().numpy().ravel()] + [
            opt.state[p][k].numpy().ravel() for k in module._SLOTS]) for p in params]

    # the interpreter, as the reference
    import jax.numpy as jnp
    import optax

    tx = programs.as_optax(program, 0.01)
    params = [jnp.asarray(x) for x in start]
    state = tx.init(params)
    for step in grads:
        updates, state = tx.update([jnp.asarray(g) for g in step], state, params)
        params = optax.apply_updates(params, updates)
    expected = [np.concatenate([np.asarray(p).ravel()] + [np.asarray(slot[i]).ravel()
                                                          for slot in state.slots])
                for i, p in enumerate(params)]
    for chunk in (4, 10**9):
        for a, b in zip(run(chunk), expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    x, module._CHUNK = torch.zeros(5, 7), 4
    assert [len(piece[0]) for piece in module._chunks([x, x])] == [4] * 8 + [3]
    assert [piece[0].shape for piece in module._chunks([x, x.t()])] == [(5, 7)]
    # off the CPU (here the meta device: shapes only) pieces would only multiply launches
    meta = torch.zeros(5, 7, device="meta")
    assert [piece[0].shape for piece in module._chunks([meta, meta])] == [(5, 7)]


def test_numpy_update_modifies_nothing(tmp_path):
    module = load_module(tmp_path, programs.BASELINES["adam"], "numpy", "adam_np")
    params = {"w": np.ones(3, np.float32)}
    grads = {"w": np.array([1.0, -1.0, 0.0], np.float32)}
    state = module.init(params)
    new_params, new_state = module.update(grads, state, params, lr=0.1)
    assert np.array_equal(params["w"], np.ones(3)) and state["count"] == 0
    assert new_state["count"] == 1 and new_params["w"].dtype == np.float32
    assert not np.shares_memory(new_state["slots"]["m"]["w"], grads["w"])


def test_numpy_erf_is_accurate(tmp_path):
    import math

    program = programs.parse("def p(g, lr):\n    u = erf(g) * lr\n    return u\n")
    module = load_module(tmp_path, program, "numpy", "erf_np")
    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, 1e-30, -1e-8, 2.5, 3e38]])
    got = module._erf(x)
    want = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) < 2e-15


# -- the command line ----------------------------------------------------------------------------
def discover(*argv):
    from discover.cli import main

    return main([str(a) for a in argv])


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as the search writes it: best/program.opt and a hall of fame."""
    run = tmp_path / "run1"
    (run / "best").mkdir(parents=True)
    best = programs.BASELINES["lion"]
    (run / "best" / "program.opt").write_text(str(best))
    entries = [{"program": str(programs.BASELINES["sgd"]), "search_score": 9.0},
               {"program": str(best), "search_score": 0.25, "held_out_score": 0.5},
               "not an entry"]
    (run / "hall_of_fame.json").write_text(json.dumps(entries))
    return run


def test_cli_exports_a_program_file_to_stdout(tmp_path, capsys):
    path = tmp_path / "adam.opt"
    path.write_text(str(programs.BASELINES["adam"]))
    assert discover("export", path, "--to", "numpy") == 0
    out = capsys.readouterr().out
    assert out == programs.export(programs.BASELINES["adam"], "numpy", file=str(path))


def test_cli_exports_a_run_with_its_provenance(run_dir, capsys):
    assert discover("export", run_dir, "--to", "torch") == 0
    doc = capsys.readouterr().out.split('"""')[1]
    assert f"run: {run_dir}" in doc
    assert "search score: 0.25" in doc and "held-out score: 0.5" in doc  # lion's entry
    (run_dir / "hall_of_fame.json").write_text(json.dumps([{"program": "def broken("}]))
    assert discover("export", run_dir, "--to", "torch") == 0  # no scores, still a module
    assert "score" not in capsys.readouterr().out.split('"""')[1]
    (run_dir / "hall_of_fame.json").unlink()
    assert discover("export", run_dir, "--to", "optax") == 0


def test_cli_writes_atomically_and_refuses_to_overwrite(run_dir, tmp_path, capsys):
    out = tmp_path / "lion.py"
    assert discover("export", run_dir, "--to", "numpy", "-o", out) == 0
    first = out.read_text()
    assert discover("export", run_dir, "--to", "optax", "-o", out) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == first
    assert discover("export", run_dir, "--to", "optax", "-o", out, "--force") == 0
    assert out.read_text() != first and "optax" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lion.py", "run1"]  # no temp files


@pytest.mark.parametrize("setup,argv,message", [
    (None, ["missing.opt"], "no such program file"),
    ("bad", ["bad.opt"], "bad.opt:2:"),
    ("dir", ["."], "not a run directory"),
    ("hof", ["run"], "cannot read"),
    (None, ["x.opt", "-o", "no/such/dir/x.py"], None),
])
def test_cli_bad_input_is_one_line(tmp_path, monkeypatch, capsys, setup, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.opt").write_text(str(programs.BASELINES["sgd"]))
    if setup == "bad":
        (tmp_path / "bad.opt").write_text("def p(g):\n    import os\n")
    if setup == "hof":
        (tmp_path / "run" / "best").mkdir(parents=True)
        (tmp_path / "run" / "best" / "program.opt").write_text(str(programs.BASELINES["sgd"]))
        (tmp_path / "run" / "hall_of_fame.json").write_text("[{")
    assert discover("export", *argv, "--to", "numpy") == 2
    err = capsys.readouterr().err
    assert err.startswith("discover: error: ") and err.count("\n") == 1
    assert message is None or message in err
