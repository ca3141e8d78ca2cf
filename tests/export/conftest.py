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

import json

import numpy as np
import pytest

import programs
from export.cases import (
    CASES,
    LIBRARY,
    LR,
    NOISY_OPS,
    SHAPES,
    STEPS,
    TARGETS,
    Recordings,
    compare,
    make_inputs,
    module_name,
    problems_vs_interpreter,
    run_targets,
)


@pytest.fixture(scope="session")
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
            source = programs.export(program, target, run="tests/export", search_score=1.5)
            (root / target / f"{case['module']}.py").write_text(source)
    manifest = {"steps": STEPS, "lr": LR, "leaves": list(SHAPES), "cases": cases,
                "library": LIBRARY, "noisy_ops": NOISY_OPS}
    (root / "manifest.json").write_text(json.dumps(manifest))
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


