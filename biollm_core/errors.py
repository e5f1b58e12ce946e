"""Errors a user can cause. The CLI prints their message on one line and exits with code 2."""


class UserError(Exception):
    """Bad input: a config key, a file, an address. The message names where and what was expected."""
