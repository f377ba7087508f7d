"""The one base class for errors caused by user input (files, names, configs).

The CLI prints these as a single line naming the file, line, field or task, with no
traceback; library callers can catch them by type.
"""


class FlanJaxError(ValueError):
    """Bad input: the message names what is wrong and where."""
