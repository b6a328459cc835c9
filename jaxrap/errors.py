"""The one exception type that reaches users as a message instead of a traceback."""


class JaxrapError(Exception):
    """A problem the user can fix: bad input, a missing file, a wrong config value.

    The message is one line that names what is wrong (file, row, key) and how to fix it.
    The command line prints it as ``jaxrap: error: <message>`` and exits with status 2.
    """


class FieldError(JaxrapError):
    """A JaxrapError about one field of a record (a ``SamplingParams`` field): ``field`` names
    it, so that a UI can point at its input without reading the message."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
