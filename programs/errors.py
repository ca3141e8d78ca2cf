"""The one exception type of the program language."""

from __future__ import annotations


class ProgramError(ValueError):
    """A program text (or a program built in code) is not a valid update program.

    Contract: ``str(err)`` is one line, ``SOURCE:LINE:COL: MESSAGE``, where SOURCE is the file
    name when known (else ``<program>``); ``line`` and ``col`` count from 1 (0 when the problem
    has no position, e.g. an empty text).
    """

    def __init__(self, message: str, line: int = 0, col: int = 0, source: str | None = None):
        self.message = message
        self.line = line
        self.col = col
        self.source = source or "<program>"
        super().__init__(f"{self.source}:{line}:{col}: {message}")

    def with_source(self, source: str) -> ProgramError:
        """The same error, attributed to ``source`` (a file name)."""
        return ProgramError(self.message, self.line, self.col, source)
