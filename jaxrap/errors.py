"""The one exception type that reaches users as a message instead of a traceback."""


class JaxrapError(Exception):
    """A problem the user can fix: bad input, a missing file, a wrong config value.

    The message is one line that names what is wrong (file, row, key) and how to fix it.
    The command line prints it as ``jaxrap: error: <message>`` and exits with status 2.
    """
