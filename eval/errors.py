"""The one exception of the evaluation harness: a problem the user can fix, said plainly.

The command line prints its message (no traceback) and exits with status 2.
"""


class EvalError(Exception):
    """Bad input or setup: unknown task, missing file, malformed field, missing Java, ..."""
