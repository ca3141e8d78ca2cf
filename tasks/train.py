"""Train one task with an update program run by the compile-once VM (``programs.vm``).

A :class:`Trainer` owns one jitted function per (task, learning-rate grid size, seeds,
statement bucket, slot count): the whole training run (``jax.lax.scan`` over the task's
precomputed batches) of every (learning rate, seed) pair at once (gradients batched by
``vmap``, the update by ``programs.vm.Machine.step_rows``), with
the encoded program an *argument*.  Running a new program costs no compile.

Contract:

* Parameters start from ``task.init(jax.random.key(seed))`` and train on
  ``task.train_batches(seed)``, exactly as ``tasks.optax_loop.train`` does; ``t`` counts
  from 1, ``T`` is ``task.steps``.
* The learning-rate grid (:func:`lr_grid`) is log-spaced around ``task.default_lr``, half a
  decade (a factor sqrt(10) ~ 3.16) apart: for 3 points ``default_lr * [0.316, 1, 3.16]``.
  ``run(..., lrs=...)`` trains at any other rates, as many as the grid has points, without a
  compile: the rates are an argument (``discover.scoring.tuning`` walks a wide grid this way).
* A run is *diverged* from the first step whose training loss is not finite; its validation
  loss is reported as NaN even if later values happen to be finite again.  The steps run in
  chunks (:func:`early_stop_chunk`); once every run of the grid has diverged, the remaining
  chunks are skipped and their training losses reported as NaN.  Results are deterministic.
* :class:`OptaxTrainer` runs an ``optax`` optimizer over the same grid and seeds with the same
  loop; it compiles per optimizer and is the reference (tests) and the floor (benchmark).
* Tracing a built-in task's run takes longer than compiling it.  With ``programs.export_cache``
  on (``discover.scoring.compile_cache.enable`` turns it on) the traced and lowered run of a
  registered built-in task is kept on disk (``jax.export``), keyed by everything it is traced from (the
  task's registration and size, the bucket, the grid, the seeds, the argument shapes, the
  JAX version and a digest of the sources of ``programs`` and ``tasks``); a trainer that finds
  it skips tracing, and XLA's own persistent cache then skips compiling.  The exported module
  is the one tracing gives, so the results are the same (``tests/test_compile_cache.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from programs import export_cache
from programs.program import Program
from programs.vm import EncodedProgram, Machine, scalar_registers
from tasks import schedule as schedules
from tasks.base import Task

LR_GRID_FACTOR = 10 ** 0.5
"""Ratio of neighbouring learning rates of the grid (half a decade)."""

NO_FOLD_ELEMENTS = (1 << 13, 1 << 16)
"""A trainer folds scalings into their readers (``programs.vm.Machine(fold=True)``) unless a
register row (learning rates x seeds x parameters) has a number of elements in this range.
Measured with XLA:CPU on 2 cores: folding saves statements (a dispatch, and a pass over memory
each), which pays on tiny rows and on rows that do not fit the L2 cache (256 KiB and up), but
it adds per-element work to every statement, which costs more than it saves in between."""


def lr_grid(center: float, n: int = 3) -> np.ndarray:
    """``n`` log-spaced learning rates centred on ``center``, ``LR_GRID_FACTOR`` apart
    (float32; for even ``n`` the centre falls between two points)."""
    if n < 1:
        raise ValueError(f"the learning-rate grid needs at least one point, got {n}")
    exponents = np.arange(n) - (n - 1) / 2
    return (center * LR_GRID_FACTOR ** exponents).astype(np.float32)


def _grid_rates(grid: np.ndarray, lrs) -> np.ndarray:
    """``lrs`` as float32 rates to run in place of ``grid`` (same number of points)."""
    if lrs is None:
        return grid
    lrs = np.asarray(lrs, np.float32).reshape(-1)
    if lrs.shape != grid.shape or not (np.isfinite(lrs).all() and (lrs > 0).all()):
        raise ValueError(f"expected {grid.size} positive learning rates (the trainer's grid "
                         f"size), got {lrs.tolist()}")
    return lrs


def early_stop_chunk(steps: int, least: int = 10, most: int = 25) -> int:
    """Steps per early-stop check: the largest divisor of ``steps`` in ``[least, most]``
    (``steps`` itself, no early stop, when there is none)."""
    divisors = [d for d in range(least, most + 1) if steps % d == 0]
    return max(divisors) if divisors else steps


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Outcome of one grid of runs.

    ``lrs`` float32 [L]; ``valid_losses`` float [L, E] (NaN for a diverged run);
    ``initial_valid_losses`` float [E] (before training, per seed); ``train_losses``
    float [L, E, steps] (loss of each step before its update; NaN in the chunks skipped
    once every run had diverged) or None when not asked for.
    """

    lrs: np.ndarray
    seeds: tuple[int, ...]
    valid_losses: np.ndarray
    initial_valid_losses: np.ndarray
    train_losses: np.ndarray | None = None


class _Data:
    """Per-task arrays shared by both trainers: flat initial weights, stacked batches."""

    def __init__(self, task: Task, seeds: Sequence[int]):
        if not seeds:
            raise ValueError("at least one seed is needed")
        self.seeds = tuple(int(s) for s in seeds)
        inits = [task.init(jax.random.key(s)) for s in self.seeds]
        flat, self.unravel = ravel_pytree(inits[0])
        self.shapes = [leaf.shape for leaf in jax.tree.leaves(inits[0])]
        self.w0 = jnp.stack([ravel_pytree(p)[0] for p in inits]).astype(jnp.float32)
        self.size = int(flat.size)
        # [steps, E, ...]: the scan walks the leading axis, each step sees every seed's batch.
        per_seed = [task.train_batches(s) for s in self.seeds]
        self.batches = jax.tree.map(lambda *b: jnp.asarray(np.stack(b, axis=1)), *per_seed)
        self.valid = jax.tree.map(jnp.asarray, task.valid_batch())

    def flat_loss(self, task: Task):
        return lambda w, batch: task.loss(self.unravel(w), batch)


class Trainer:
    """Trains ``task`` with programs run by the VM over a learning-rate grid and seeds.

    ``run(program)`` returns a :class:`RunResult`.  ``program`` is a ``Program`` (encoded for
    this trainer's bucket; ``ValueError`` if it does not fit) or an ``EncodedProgram`` from
    :meth:`encode`.  ``compiled`` is the jitted run (its ``_cache_size()`` stays 1); the
    scalar pass (``programs.vm.scalar_registers``) is compiled once per bucket, grid size and
    padded step count, shared by trainers.  ``fold``: the VM kernel, see
    :data:`NO_FOLD_ELEMENTS` (None: chosen by row size; the results are the same).
    ``schedule``: a :mod:`tasks.schedule` name; the program reads ``lr`` times the schedule's
    multiplier at each step (the training run itself is the same compiled code).
    """

    def __init__(self, task: Task, *, seeds: Sequence[int] = (0,), lr_grid_size: int = 3,
                 max_statements: int = 32, max_slots: int = 4, fold: bool | None = None,
                 schedule: str = schedules.CONSTANT):
        self.task = task
        self.schedule = schedules.check(schedule)
        self.data = _Data(task, seeds)
        self.lrs = lr_grid(task.default_lr, lr_grid_size)
        if fold is None:
            row = len(self.lrs) * len(self.data.seeds) * self.data.size
            fold = not NO_FOLD_ELEMENTS[0] <= row < NO_FOLD_ELEMENTS[1]
        self.machine = Machine(self.data.shapes, max_statements, max_slots, fold=fold)
        self.layout = jax.device_put(self.machine.layout)
        # The scalar pass is shared by every task whose steps pad to the same power of two.
        self.padded_steps = max(64, 1 << (task.steps - 1).bit_length())
        self.lr_scale = (None if schedule == schedules.CONSTANT else
                         jnp.asarray(schedules.multipliers(schedule, task.steps,
                                                           self.padded_steps)))
        self.chunk = early_stop_chunk(task.steps)
        self._traced = jax.jit(self._run)
        self._runner = export_cache.Exported(self._traced, self._export_key())
        self._initial = None

    @property
    def compiled(self):
        """The jitted run: traced here, or loaded from the export cache."""
        return self._runner.compiled

    @property
    def export_origin(self) -> str | None:
        """"loaded" from the export cache, "written" to it, or None (traced as usual)."""
        return self._runner.origin

    def _export_key(self):
        """What the run closes over that no source file fixes (``programs.export_cache``);
        None for a task that is not a registered built-in (a user's factory may close over
        values no key can see)."""
        from tasks import registry

        if not registry.is_builtin(self.task):
            return None
        registers = self.machine.registers
        return (self.task.name, self.task.steps, self.task.batch_size, self.task.description,
                self.data.seeds, len(self.lrs), registers.max_statements, registers.max_slots,
                self.machine.fold, self.padded_steps, self.chunk)

    def _call(self, *args):
        """Run through the exported run when the cache has it (or can take it), else trace."""
        return self._runner(*args)

    def encode(self, program: Program) -> EncodedProgram:
        return self.machine.encode(program)

    def _run(self, program, scalars, w0, batches, valid, layout):
        task, machine, data = self.task, self.machine, self.data
        loss_fn = data.flat_loss(task)
        value_and_grad = jax.value_and_grad(loss_fn)

        # The gradients: vmap over seeds (weights, batches), then over learning rates.
        grid_grad = jax.vmap(jax.vmap(value_and_grad, in_axes=(0, 0)), in_axes=(0, None))
        n_lr, n_seed = scalars.shape[0], w0.shape[0]
        runs = n_lr * n_seed  # run r = (learning rate r // n_seed, seed r % n_seed)

        def step(carry, xs):
            w, regs, dead = carry  # [runs, N], [runs, n_vector, N], [runs]
            scalars, batch = xs  # [n_lr, n_scalar], the seeds' batches
            loss, g = grid_grad(w.reshape(n_lr, n_seed, -1), batch)
            # The update: one program for every run, so the machine maps over the runs
            # inside its statements (Machine.step_rows), not vmap over the machine.
            w, regs = machine.step_rows(program, regs, w, g.reshape(runs, -1),
                                        jnp.repeat(scalars, n_seed, axis=0), layout)
            loss = loss.reshape(runs)
            return (w, regs, dead | ~jnp.isfinite(loss)), loss

        scalars = scalars[:, : task.steps]  # the rest pads the shared scalar pass
        regs = jnp.zeros((runs,) + machine.init().shape, jnp.float32)
        w = jnp.broadcast_to(w0, (n_lr,) + w0.shape).reshape(runs, -1)
        dead = jnp.zeros((runs,), bool)
        xs = (jnp.moveaxis(scalars, 1, 0), batches)
        chunk = self.chunk
        # Chunks of steps in a while loop that ends once every run has diverged (a while
        # loop, not a cond: XLA copies a cond's operands, the whole register file).
        losses = jnp.full((task.steps, runs), jnp.nan, jnp.float32)

        def go_on(carry):
            i, _, _, dead, _ = carry
            return (i * chunk < task.steps) & ~jnp.all(dead)

        def run_chunk(carry):
            i, w, regs, dead, losses = carry
            part = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, i * chunk, chunk), xs)
            (w, regs, dead), loss = jax.lax.scan(step, (w, regs, dead), part)
            losses = jax.lax.dynamic_update_slice_in_dim(losses, loss, i * chunk, 0)
            return i + 1, w, regs, dead, losses

        _, w, regs, dead, losses = jax.lax.while_loop(
            go_on, run_chunk, (jnp.int32(0), w, regs, dead, losses))
        valid_loss = jax.vmap(lambda w: loss_fn(w, valid))(w)
        valid_loss = jnp.where(dead, jnp.nan, valid_loss).reshape(n_lr, n_seed)
        losses = losses.reshape(task.steps, n_lr, n_seed)
        return valid_loss, jnp.moveaxis(losses, 0, -1)

    def initial_valid_losses(self) -> np.ndarray:
        """Validation loss of the untrained weights, per seed (computed once)."""
        if self._initial is None:
            loss_fn = self.data.flat_loss(self.task)
            fn = jax.jit(jax.vmap(loss_fn, in_axes=(0, None)))
            self._initial = np.asarray(fn(self.data.w0, self.data.valid), np.float64)
        return self._initial

    def run(self, program: Program | EncodedProgram, *, curves: bool = False,
            lrs: np.ndarray | None = None) -> RunResult:
        """Train ``program`` at every learning rate of ``lrs`` (default: the trainer's grid;
        any rates, as many as the grid has points: they are an argument, not compiled in)."""
        lrs = _grid_rates(self.lrs, lrs)
        encoded = self.encode(program) if isinstance(program, Program) else program
        if not self.machine.fold and (encoded.scales >= 0).any():
            raise ValueError("a program encoded with fold=True given to a trainer without "
                             "folding: pass the Program, or encode with trainer.encode()")
        scalars = scalar_registers(encoded, lrs, self.padded_steps,
                                   np.float32(self.task.steps), self.lr_scale)
        valid, losses = self._call(encoded, scalars, self.data.w0, self.data.batches,
                                   self.data.valid, self.layout)
        return RunResult(lrs, self.data.seeds, np.asarray(valid, np.float64),
                         self.initial_valid_losses(),
                         np.asarray(losses, np.float64) if curves else None)


class OptaxTrainer:
    """The same grid of runs with an optax optimizer ``make_tx(learning_rate)`` (same initial
    weights, batches, learning rates), jitted per instance, so per optimizer: the reference
    loop of the tests and the floor of the benchmark.  No early stop."""

    def __init__(self, task: Task, make_tx: Callable[[jax.Array], optax.GradientTransformation],
                 *, seeds: Sequence[int] = (0,), lr_grid_size: int = 3):
        self.task = task
        self.data = _Data(task, seeds)
        self.lrs = lr_grid(task.default_lr, lr_grid_size)
        self.make_tx = make_tx
        self.compiled = jax.jit(self._run)
        self._initial = None

    def _run(self, lrs, w0, batches, valid):
        task, data = self.task, self.data

        def run(lr, w, seed_batches):
            tx = self.make_tx(lr)

            def step(carry, batch):
                params, state = carry
                loss, grads = jax.value_and_grad(task.loss)(params, batch)
                updates, state = tx.update(grads, state, params)
                return (optax.apply_updates(params, updates), state), loss

            params = data.unravel(w)
            (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), seed_batches)
            return task.loss(params, valid), losses

        # Seeds: weights [E, N] and batches [steps, E, ...]; then learning rates.
        per_seed = jax.vmap(run, in_axes=(None, 0, 1))
        return jax.vmap(per_seed, in_axes=(0, None, None))(lrs, w0, batches)

    def run(self, *, curves: bool = False, lrs: np.ndarray | None = None) -> RunResult:
        lrs = _grid_rates(self.lrs, lrs)
        valid, losses = self.compiled(jnp.asarray(lrs), self.data.w0, self.data.batches,
                                      self.data.valid)
        if self._initial is None:
            loss_fn = jax.jit(jax.vmap(self.data.flat_loss(self.task), in_axes=(0, None)))
            self._initial = np.asarray(loss_fn(self.data.w0, self.data.valid), np.float64)
        return RunResult(lrs, self.data.seeds, np.asarray(valid, np.float64),
                         self._initial, np.asarray(losses, np.float64) if curves else None)
