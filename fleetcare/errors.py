"""The one error type the CLI turns into a single line and exit code 2."""


class InputError(Exception):
    """Bad input: the message names the file (or option) and the key."""
