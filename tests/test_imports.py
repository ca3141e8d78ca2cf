"""Importing the product must not start JAX's backend: the driver initialises Ray first."""

import subprocess
import sys


def test_importing_the_cli_and_registries_leaves_jax_uninitialised():
    code = (
        "import discover, discover.cli, discover.campaign, tasks, programs\n"
        "discover.cli.build_parser()\n"
        "from jax._src import xla_bridge\n"
        "assert not xla_bridge._backends, 'a module touched a JAX array at import time'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
