"""Exported modules against the interpreter, torch against optax, the libraries' own
optimizers, and the fast export (recordings of ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import programs
from export.cases import (
    CASES,
    LR,
    MUTATED_CASES,
    N_MUTATED,
    REFERENCES,
    RTOL,
    SHAPES,
    STEPS,
    TARGETS,
    assert_trajectories_close,
    compare,
    load_module,
    magnitude,
    make_inputs,
    problems_vs_interpreter,
    run_numpy_module,
)


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
    assert_trajectories_close(recordings.tensors("torch", cid), recordings.tensors("optax", cid),
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
    assert_trajectories_close(actual, expected, f"{target} {program} vs {library}")


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
        assert_trajectories_close(run_numpy_module(fast, data, total), run_numpy_module(exact, data, total),
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
        assert_trajectories_close({k: np.stack(v) for k, v in trajectory.items()}, expected,
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
    assert_trajectories_close({k: np.stack(v) for k, v in trajectory.items()}, expected,
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


def test_comparison_has_teeth(tmp_path):
    """Adam with beta2 = 0.9991 instead of 0.999 is caught; Adam against itself is not."""
    data = make_inputs(1, extreme=False)
    adam = programs.BASELINES["adam"]
    changed = programs.parse(str(adam).replace("0.999 *", "0.9991 *"))
    assert changed != adam
    runs = [run_numpy_module(load_module(tmp_path, p, "numpy", f"teeth{i}"), data)
            for i, p in enumerate((adam, changed))]
    assert compare(runs[1], runs[0]) and not compare(runs[0], runs[0])


