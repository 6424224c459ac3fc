"""Errors the user can fix. The CLI turns them into one line on stderr and exit status 2."""


class BadInputError(Exception):
    """Input that cannot be used as given: the message names the problem and the file."""


class TumourSegmentationError(BadInputError):
    """The one-click tumour could not find a bounded, enhancing lesion at the seed."""


class ModelPackageError(BadInputError):
    """A model package is missing, incomplete, or fails its SHA-256 check."""
