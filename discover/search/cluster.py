"""Ray itself: starting or joining a cluster, where the actors run, and Ray's errors in one
line.

Contract: :func:`init_ray` starts or joins Ray only when it is not up, and a cluster that
cannot be joined is a one-line :class:`~discover.errors.UserError` (at once where nothing
answers on HOST:PORT); :func:`describe` turns any exception, one raised inside an actor
included, into one line.  Ray is imported inside the functions: importing this module
starts nothing.
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from typing import Any

from discover.errors import UserError


def describe(err: BaseException | str) -> str:
    """One line: the exception's type and the first line of its message; for an exception
    raised inside an actor (its creation included), the line that names it (the last)."""
    if isinstance(err, str):
        return err
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # Ray colours the actor's name
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if len(lines) > 1 and (_raised_inside(err) or "creation task" in lines[0]):
        return lines[-1]
    return f"{type(err).__name__}: {lines[0]}"


def _raised_inside(err: BaseException) -> bool:
    import ray

    return isinstance(err, ray.exceptions.RayTaskError)


def init_ray(address: str | None) -> bool:
    """Start or join Ray unless it is up already; True when this call started it.

    ``address`` None: RAY_ADDRESS when set, else Ray's default (the cluster ``ray start`` runs
    on this machine, if any, else a new local instance on every core); "local": a new local
    instance; "auto" or HOST:PORT: join that existing cluster, never starting one (a cluster
    that cannot be joined is a UserError)."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or None
    if address in (None, "local"):
        kwargs["include_dashboard"] = False
    else:
        _check_reachable(address)
    try:
        with warnings.catch_warnings():
            # JAX warns on any os.fork() once it has run in this process; Ray forks only
            # through subprocess, which execs at once, so no JAX state is shared with the
            # child.
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        if address in (None, "local"):
            raise
        hint = ""
        if "auth" in str(err).lower() or os.environ.get("RAY_AUTH_MODE") is None:
            hint = ("; a cluster started by 'ray start' uses token authentication by "
                    "default: set RAY_AUTH_MODE=token and give the cluster's token "
                    "(~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)")
        raise UserError(f"cannot join the Ray cluster at {address}: {describe(err)}"
                        f"{hint}") from None
    return True


def _check_reachable(address: str) -> None:
    """A HOST:PORT nothing answers on is a UserError at once (Ray would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", ray://... : Ray's own lookup
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as err:
        raise UserError(f"cannot join the Ray cluster at {address}: "
                        f"{err.strerror or type(err).__name__} (is 'ray start --head' running "
                        f"there?)") from None


def ray_where() -> str:
    """Where the actors run: the Ray cluster's address, its live nodes and CPUs."""
    import ray

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return (f"the Ray cluster at {ray.get_runtime_context().gcs_address} ({nodes} node"
            f"{'s' if nodes != 1 else ''}, {cluster_cpus()} CPUs)")


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
