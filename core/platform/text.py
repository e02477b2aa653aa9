"""Marking texts for translation in code that must not import Flask-Babel (core/) or runs before a request."""


def N_(message: str) -> str:
    """Marks a message for translation (extracted by pybabel with `-k N_`); returns it unchanged."""
    return message
