"""The search: ``evolution`` (DEAP aging evolution over programs, with its policies: hurdles,
islands, the funnel, restarts) and the pools that evaluate children (``pool``: the contract;
``ray_pool``: Ray actors, one CPU each; ``simulated_pool``: stand-in workers for the driver's
benchmarks).  The loop that ties it to the run directory is ``discover.campaign``.
"""
