"""The error type for bad user input: the command line shows its message, not a traceback."""


class ConfigurationError(ValueError):
    """A value the user chose cannot work; the message names it and says how to fix it."""
