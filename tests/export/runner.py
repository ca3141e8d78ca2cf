"""Import every exported module of one target and record params and slots per step.

Run by the export tests in a fresh process per target: ``python runner.py TARGET ROOT``, where
``ROOT`` holds ``manifest.json``, the inputs and the exported modules (``conftest.py``);
writes ``ROOT/TARGET.npz`` and ``ROOT/TARGET.errors.json``.
"""

import importlib.util
import json
import sys
import traceback

import numpy as np

target, root = sys.argv[1], sys.argv[2]
if target in ("torch", "numpy"):
    # XLA on CPU flushes subnormals to zero (FTZ and DAZ); give eager torch and NumPy the
    # same arithmetic on this thread (NumPy runs on it too), so that the comparison is of
    # the programs, not of the platforms' denormal modes.
    import torch
    torch.set_num_threads(1)
    assert torch.set_flush_denormal(True)
with open(f"{root}/manifest.json") as f:
    manifest = json.load(f)
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
    import jax
    import optax
    params = {k: jax.numpy.asarray(data["p/" + k]) for k in leaves}

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return params, state, get_slots(state)

    if target != "eager":  # eager: op by op, each op its own computation, as torch and NumPy
        step = jax.jit(step)  # (2.5x faster than jax.disable_jit, and equal bit for bit on
        #                        every case when that was measured)
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
        import programs
        tx = programs.as_optax(programs.parse(case["text"]), lr, **total)
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
    except Exception:  # noqa: BLE001 -- a case that raises is recorded, and reported
        errors[case["id"]] = traceback.format_exc(limit=-3)
for name in manifest["library"].get(target, []):
    save(name, *run_library(name))
np.savez(f"{root}/{target}.npz", **results)
with open(f"{root}/{target}.errors.json", "w") as f:
    json.dump(errors, f)
