"""Time one optimizer step of exported modules against the libraries' own optimizers.

    .venv/bin/python scripts/bench_export.py [--rounds 25] [--steps 2] [--processes 3]

On a model-sized pytree (about 10.5M float32 parameters in six tensors), side by side in one
run: the optax export of the adam and lion baselines against ``optax.adam`` and
``optax.lion(weight_decay=0)``, all jitted with the parameters and the state donated, as a
training step does (the interpreter, ``programs.as_optax``, is shown too); the torch export of
adam against ``torch.optim.Adam`` with foreach off and on (and the torch export of lion, which
torch does not have).  Each export is timed twice: the exact module (the default: results
saturate at the dtype's finite range, as the interpreter's) and the fast one
(``programs.export(..., fast=True)``, no saturation).  Each framework is set up just before it
is timed, torch first (its temporaries come from the C heap, whose state JAX's buffers
change).  The variants are timed in interleaved rounds (each round times ``--steps`` steps of
every variant, in rotating order), so that a change in the machine's load hits all of them
alike; everything runs on one thread and is timed in CPU time of the process, so that on a
shared machine waiting for a core does not count.  Each process gives the median CPU time per step over the rounds and the median over
rounds of the ratio exported / reference; the whole is run in ``--processes`` fresh processes,
one after the other (torch's own time moves by up to 30% from one process to the next: its
temporaries do or do not land on fresh pages), and the table gives the median over them and
the range of the ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# One thread everywhere, set before jax and torch load: the comparison is of the work done.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_cpu_multi_thread_eigen=false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import programs

SHAPES = [(1024, 4096), (4096, 1024), (1024, 1024), (512, 2048), (4096,), (1024,)]
LR = {"adam": 1e-3, "lion": 1e-4}


def load(directory: Path, name: str, target: str, fast: bool = False):
    """Export baseline ``name`` to ``target`` and import it from a file, as a user would."""
    path = directory / f"{name}_{target}{'_fast' if fast else ''}.py"
    path.write_text(programs.export(programs.BASELINES[name], target, fast=fast))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, module.__all__[0])


def interleaved(steps: dict, rounds: int, n: int) -> dict[str, list[float]]:
    """CPU seconds per step of each callable in ``steps`` (each runs one step), per round.

    CPU time of this (single-threaded) process, not wall time: on a shared machine the
    waits for a core are not the optimizer's.
    """
    times = {k: [] for k in steps}
    names = list(steps)
    for r in range(rounds):
        for k in names[r % len(names):] + names[: r % len(names)]:
            start = time.process_time()
            for _ in range(n):
                steps[k]()
            times[k].append((time.process_time() - start) / n)
    return times


def jax_steps(directory: Path):
    import jax
    import jax.numpy as jnp
    import optax

    rng = np.random.default_rng(0)
    params = {f"p{i}": jnp.asarray(rng.standard_normal(s, np.float32))
              for i, s in enumerate(SHAPES)}
    grads = jax.tree.map(lambda p: p * 0.01, params)
    variants = {
        ("adam", "optax.adam"): optax.adam(LR["adam"]),
        ("adam", "exported"): load(directory, "adam", "optax")(LR["adam"]),
        ("adam", "exported fast"): load(directory, "adam", "optax", fast=True)(LR["adam"]),
        ("adam", "interpreted"): programs.as_optax(programs.BASELINES["adam"], LR["adam"]),
        ("lion", "optax.lion"): optax.lion(LR["lion"], weight_decay=0.0),
        ("lion", "exported"): load(directory, "lion", "optax")(LR["lion"]),
        ("lion", "exported fast"): load(directory, "lion", "optax", fast=True)(LR["lion"]),
        ("lion", "interpreted"): programs.as_optax(programs.BASELINES["lion"], LR["lion"]),
    }
    steps = {}
    for key, tx in variants.items():
        def update(p, s, g, tx=tx):
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s

        update = jax.jit(update, donate_argnums=(0, 1))  # as a training step: in place
        carry = [jax.tree.map(jnp.copy, params), None]
        carry[1] = tx.init(carry[0])

        def step(update=update, carry=carry):
            carry[0], carry[1] = update(carry[0], carry[1], grads)
            jax.block_until_ready(carry[0])

        step()  # compile
        steps[key] = step
    return steps


def torch_steps(directory: Path):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    def make(factory):
        params = [torch.nn.Parameter(torch.from_numpy(rng.standard_normal(s, np.float32)))
                  for s in SHAPES]
        for p in params:
            p.grad = p.detach() * 0.01
        opt = factory(params)
        opt.step()  # state created
        return opt.step

    adam, lion = load(directory, "adam", "torch"), load(directory, "lion", "torch")
    adam_fast = load(directory, "adam", "torch", fast=True)
    return {
        ("adam", "torch.optim.Adam foreach=False"):
            make(lambda ps: torch.optim.Adam(ps, lr=LR["adam"], foreach=False)),
        ("adam", "torch.optim.Adam foreach=True"):
            make(lambda ps: torch.optim.Adam(ps, lr=LR["adam"], foreach=True)),
        ("adam", "exported"): make(lambda ps: adam(ps, lr=LR["adam"])),
        ("adam", "exported fast"): make(lambda ps: adam_fast(ps, lr=LR["adam"])),
        ("lion", "exported"): make(lambda ps: lion(ps, lr=LR["lion"])),
    }


def measure(rounds: int, n: int) -> list[dict]:
    """One process's rows: framework, optimizer, reference, ms of both, median ratio."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # torch first, each framework set up just before it is timed: torch's out-of-place
        # temporaries come from the C heap, whose state JAX's buffers would change
        for framework, make_steps in [("torch", torch_steps), ("jax (jit)", jax_steps)]:
            steps = make_steps(Path(tmp))
            times = interleaved(steps, rounds, n)
            del steps
            med = {k: statistics.median(v) for k, v in times.items()}
            for (opt, variant), seconds in med.items():
                if variant.startswith("exported"):
                    continue
                for mine in ("exported", "exported fast"):
                    if (opt, mine) in times:
                        # the median of the per-round ratios: a round's variants ran back to
                        # back
                        ratio = statistics.median(e / r for e, r in
                                                  zip(times[(opt, mine)], times[(opt, variant)]))
                        rows.append({"framework": framework, "optimizer":
                                     opt + (" fast" if "fast" in mine else ""),
                                     "reference": variant, "ref_ms": seconds * 1e3,
                                     "ms": med[(opt, mine)] * 1e3, "ratio": ratio})
            for (opt, variant), seconds in med.items():
                if variant == "exported" and not any(o == opt and v != "exported"
                                                     for o, v in med):
                    rows.append({"framework": framework, "optimizer": opt,
                                 "reference": "(none in torch)", "ref_ms": None,
                                 "ms": seconds * 1e3, "ratio": None})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    parser.add_argument("--processes", type=int, default=3,
                        help="fresh processes, one after the other; the table gives the median "
                             "over them, and the ratio's range")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one child
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps(measure(args.rounds, args.steps)))
        return 0
    n_params = sum(int(np.prod(s)) for s in SHAPES)
    print(f"{n_params / 1e6:.1f}M float32 parameters in {len(SHAPES)} tensors; one thread; "
          f"CPU ms per step, median of {args.rounds} interleaved rounds of {args.steps} steps "
          f"in each of {args.processes} fresh processes")
    runs = []
    for _ in range(args.processes):
        child = subprocess.run([sys.executable, __file__, "--json", "--rounds", str(args.rounds),
                                "--steps", str(args.steps)], capture_output=True, text=True,
                               check=True)
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"| {'framework':<10}| {'optimizer':<10}| {'reference':<31}| {'ref ms':>7} "
          f"| {'exported ms':>11} | {'exported/ref':>12} | {'range':>11} |")
    print(f"|{'-' * 11}|{'-' * 11}|{'-' * 32}|{'-' * 9}|{'-' * 13}|{'-' * 14}|{'-' * 13}|")
    for i, row in enumerate(runs[0]):
        same = [run[i] for run in runs]
        ref = "" if row["ref_ms"] is None else \
            f"{statistics.median(r['ref_ms'] for r in same):7.2f}"
        ms = statistics.median(r["ms"] for r in same)
        ratio, spread = "", ""
        if row["ratio"] is not None:
            ratios = [r["ratio"] for r in same]
            ratio = f"{statistics.median(ratios):.3f}"
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"| {row['framework']:<10}| {row['optimizer']:<10}| {row['reference']:<31}"
              f"| {ref:>7} | {ms:11.2f} | {ratio:>12} | {spread:>11} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
