"""Errors that are the user's to fix. The launcher prints them as one paragraph, no traceback."""


class UserError(Exception):
    """Bad input: an unknown name, an ill-typed value, a dataset that is not where it should be."""


class DatasetMissingError(UserError, FileNotFoundError):
    """A dataset is absent and cannot be downloaded; the message says where to put it."""
