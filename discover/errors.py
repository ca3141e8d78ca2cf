"""Errors the command line reports as one line."""


class UserError(Exception):
    """A problem with the user's input or files: printed as one line, exit status 2."""


class WorkersLost(UserError):
    """The evaluation workers cannot be kept alive (or could not start): the campaign stops
    with its unfinished jobs saved for ``discover resume``."""
