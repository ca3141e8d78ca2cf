"""Scoring: how a program is trained and judged (the yardstick).

``evaluate`` (the search's fitness: rate tuning on the search tasks, normalised against
tuned adam), ``tuning`` (the rate walk and the wide grid), ``stats`` (the median over tasks,
bootstrap intervals, what may be claimed), ``bench`` (``discover bench``: every contender on
a suite with intervals, cached), ``final_check`` (a campaign's top programs on tier C),
``leaderboard`` (``discover baselines --eval``), and the caches that make them cheap
(``baseline_cache``, ``compile_cache``, ``cache_dirs``).  Nothing here knows about the search.
"""
