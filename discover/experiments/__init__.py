"""Research experiments on the product, used by ``scripts/`` and not by the CLI:
``search_power`` (how often a search finds a target, by variant) and ``task_selection``
(choosing search tasks on the proxy-validity panel)."""
