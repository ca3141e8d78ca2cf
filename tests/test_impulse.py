"""The impulse probe (programs.impulse): does a gradient or weight of the past move a later
update?  Checked on programs whose answer is known by construction, and, for mutated
programs, against the reference interpreter run on the same inputs."""

from __future__ import annotations

import numpy as np

import programs
from programs import parse
from programs.fingerprint import CASE_BOUNDS, PROBE_CASES, STEPS
from programs.impulse import (
    RELATIVE_CHANGE,
    history_reaches_update,
    impulse_inputs,
    impulse_updates,
)
from programs.interpreter import step_tensor
from programs.mutate import MutationConfig, add_slot, mutate
from programs.simplify import history_slots

LOOPHOLE = """\
def f(g, lr, m2):
    v3 = expm1(g)
    v7 = cos(g)
    v5 = square(m2)
    u = v3 * lr
    v2 = tanh(u)
    u = where(v5, v2, g)
    m2 = v7 * 0.725641
    u = arcsinh(u)
    v7 = sinh(u)
    v1 = sin(v7)
    u = clip(v1, 0.0374787)
    return u, m2
"""


def one_slot(update: str, slot: str = "interp(g, m, 0.9)") -> programs.Program:
    return parse(f"def f(g, w, lr, m):\n    m = {slot}\n    u = {update}\n    return u, m\n")


def test_every_baseline_with_state_remembers_and_the_stateless_do_not():
    for name, program in programs.BASELINES.items():
        assert history_reaches_update(program) == bool(program.slots), name


def test_a_slot_read_only_where_it_cannot_matter_does_not_count():
    """A search's best program (rediscovery_b, default seed 1): its slot is read only as a
    where condition, zero at step 1 and nonzero after whatever the gradients were."""
    loophole = parse(LOOPHOLE)
    assert history_slots(loophole) == ("m2",)        # the text says it remembers
    assert not history_reaches_update(loophole)       # the measurement says it does not
    # the same slot as the selected value, not the condition, does matter
    assert history_reaches_update(parse(LOOPHOLE.replace("where(v5, v2, g)", "where(g, v5, v2)")))


def test_size_and_delay_of_the_past_term():
    assert history_reaches_update(one_slot("g * lr + m * 0.01"))
    assert not history_reaches_update(one_slot(f"g * lr + m * {RELATIVE_CHANGE / 1000}"))
    # a delay line: g of step k reaches the update at step k + 2 only
    delayed = parse("def f(g, lr, a, b):\n    b = a * 1.0\n    a = g * 1.0\n    u = b * lr\n"
                    "    return u, a, b\n")
    assert history_reaches_update(delayed)
    # a slot remembering the weights (not the gradients) counts as well
    assert history_reaches_update(one_slot("g * lr + m * lr", slot="interp(w, m, 0.5)"))
    # schedules: a warm-up of the rate, a counter
    assert not history_reaches_update(one_slot("g * m", slot="interp(lr, m, 0.9)"))
    assert not history_reaches_update(one_slot("g * lr * m", slot="m + 1.0"))


def reference_updates(program) -> np.ndarray:
    """``impulse_updates`` computed by the reference interpreter, one step_tensor call per
    step, case and input set (float32)."""
    ws, gs = impulse_inputs()
    out = np.zeros(ws.shape, np.float32)
    for s in range(ws.shape[0]):
        for case, lo, hi in zip(PROBE_CASES, CASE_BOUNDS[:-1], CASE_BOUNDS[1:]):
            slots = [np.zeros(case.shape, np.float32) for _ in program.slots]
            for k in range(STEPS):
                values = {"w": ws[s, k, lo:hi].reshape(case.shape),
                          "g": gs[s, k, lo:hi].reshape(case.shape),
                          "lr": np.float32(case.lr), "t": np.float32(k + 1),
                          "T": np.float32(case.T), **dict(zip(program.slots, slots))}
                outputs = [np.asarray(o) for o in step_tensor(program, values)]
                out[s, k, lo:hi] = outputs[0].ravel()
                slots = outputs[1:]
    return out


def test_engine_runs_equal_the_reference_interpreter_and_only_history_slots_reach():
    rng = np.random.default_rng(3)
    config = MutationConfig(max_slots=3, constant_probability=0.4)
    verdicts = []
    for name in ("sgd", "momentum", "adam"):
        p = programs.BASELINES[name]
        for _ in range(4):
            p = (add_slot if rng.random() < 0.5 else mutate)(p, rng, config).program or p
            ours, ref = impulse_updates(p), reference_updates(p)
            finite = np.isfinite(ref)
            np.testing.assert_array_equal(np.isfinite(ours), finite, err_msg=str(p))
            scale = np.abs(ref[finite]).max(initial=0.0)
            np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-5,
                                       atol=1e-5 * scale, err_msg=str(p))
            reaches = history_reaches_update(p)
            if not history_slots(p):
                assert not reaches, p
            verdicts.append(reaches)
    assert 0 < sum(verdicts) < len(verdicts)  # both answers occur among the mutants
