"""What a campaign writes to ``best/``: the program and modules that import and compute what
the interpreter computes; an exporter that breaks stops the campaign loudly, after the
checkpoint."""

from __future__ import annotations

import importlib.util
import json

import jax
import numpy as np
import pytest
from helpers import StandInPool

import programs
from discover.campaign import Campaign
from discover.config import CampaignConfig
from discover.search.pool import WorkerSpec

CONFIG = CampaignConfig(tasks=("quadratic",), held_out_tasks=("rosenbrock_2d",),
                        population_size=6, lr_grid=2, held_out_threshold=0.5,
                        checkpoint_every=5, progress_seconds=0, seed=3, workers=0, max_evals=12)


def run_campaign(run_dir) -> Campaign:
    campaign = Campaign.create(CONFIG, str(run_dir))
    try:
        campaign.run(StandInPool(WorkerSpec.from_config(campaign.config)), progress=False)
    finally:
        campaign.close()
    return campaign


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def best(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("best") / "run"
    run_campaign(run_dir)
    return run_dir


def test_best_program_is_the_hall_of_fame_leader(best):
    hall = json.loads((best / "hall_of_fame.json").read_text())
    text = (best / "best" / "program.opt").read_text()
    program = programs.parse(text)
    assert program.name == "discovered"
    assert program == programs.parse(hall[0]["program"])
    assert hall[0]["fingerprint"] in text and program.fingerprint() == hall[0]["fingerprint"]


def test_every_exported_module_imports_and_steps_like_the_interpreter(best):
    """Each ``best/discovered_*.py`` is imported from its file and run for five steps on the
    same parameters and gradients as ``programs.as_optax`` (float32, to 1e-5)."""
    program = programs.load(str(best / "best" / "program.opt"))
    total = {"total_steps": 50} if "T" in program.params else {}
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 4)).astype(np.float32),
              "b": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
             for _ in range(5)]
    lr = 0.01

    tx = programs.as_optax(program, lr, **total)
    state, expected = tx.init(params), dict(params)
    for g in grads:
        updates, state = tx.update(g, state, expected)
        expected = jax.tree.map(lambda p, u: np.asarray(p + u), expected, updates)

    found = sorted(p.name for p in (best / "best").glob("discovered_*.py"))
    assert found == ["discovered_numpy.py", "discovered_optax.py", "discovered_torch.py"]
    results = {}
    optax_module = load(best / "best" / "discovered_optax.py", "best_optax")
    opt = getattr(optax_module, optax_module.__all__[0])(lr, **total)
    state, p = opt.init(params), dict(params)
    for g in grads:
        updates, state = opt.update(g, state, p)
        p = jax.tree.map(lambda a, u: np.asarray(a + u), p, updates)
    results["optax"] = p

    numpy_module = load(best / "best" / "discovered_numpy.py", "best_numpy")
    state, p = numpy_module.init(dict(params), **total), dict(params)
    for g in grads:
        p, state = numpy_module.update(g, state, p, lr)
    results["numpy"] = p

    import torch

    torch_module = load(best / "best" / "discovered_torch.py", "best_torch")
    tensors = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()}
    opt = getattr(torch_module, torch_module.__all__[0])(list(tensors.values()), lr=lr, **total)
    for g in grads:
        for k, t in tensors.items():
            t.grad = torch.tensor(g[k])
        opt.step()
    results["torch"] = {k: t.detach().numpy() for k, t in tensors.items()}

    for target, got in results.items():
        for k in params:
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-5, atol=1e-7,
                                       err_msg=f"{target} {k}")
        assert not np.allclose(got["w"], params["w"])  # it moved


def test_a_broken_exporter_fails_the_campaign_loudly_after_the_checkpoint(tmp_path,
                                                                           monkeypatch):
    from programs.exporters import to_torch

    def broken(*args, **kwargs):
        raise AttributeError("the torch exporter is broken")

    monkeypatch.setattr(to_torch, "render", broken)
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="exporting the best program to torch failed.*"
                                           "AttributeError: the torch exporter is broken"):
        run_campaign(run_dir)
    state = json.loads((run_dir / "state.json").read_text())
    logged = (run_dir / "evaluations.jsonl").read_text().splitlines()
    assert state["log_count"] == len(logged) == CONFIG.max_evals  # the checkpoint came first
    assert (run_dir / "best" / "program.opt").is_file()
    assert not (run_dir / "best" / "discovered_torch.py").exists()
