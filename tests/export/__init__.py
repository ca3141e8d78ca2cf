"""The export tests (``programs.export``), one module per suite."""
