"""Errors the command line reports as one line."""


class UserError(Exception):
    """A problem with the user's input or files: printed as one line, exit status 2."""
