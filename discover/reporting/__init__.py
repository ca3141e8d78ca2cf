"""What a person reads of a run: ``summary`` (the end-of-run lines), ``report``
(``discover report``: ``report.md`` and its figures) and ``export_source`` (a program file or
run directory turned into optax, PyTorch or NumPy source)."""
