"""Bounded display of a hostile value: how a one-line message or log line may quote it.

One helper for the local side (the service, the sandbox, the tools). A value
from a caller, a file name or a template can be megabytes long or hold control
characters, newlines, lone surrogates; a message quotes at most ``limit``
characters of it, escaped, and says how long it was. ``pdf_manifest`` keeps its
own copy because the Lambda zip ships without anything local.
"""

SHOWN_CHARS = 80  # the default bound; the Invoke API quotes less (64), as Lambda does


def shown(value: object, limit: int = SHOWN_CHARS, *, quoted: bool = False) -> str:
    """``value`` cut to ``limit`` characters, escaped, with ``...(N chars)`` when it was longer.

    A string is shown as is when printable, else with backslash escapes; with
    ``quoted`` it is shown as a Python literal (``ascii()``: quotes, non-ASCII
    escaped). Anything else is shown by its ``repr``.
    """
    text = value if isinstance(value, str) else repr(value)
    cut = text[:limit]
    more = "" if len(text) <= limit else f"...({len(text)} chars)"
    if quoted and isinstance(value, str):
        return ascii(cut) + more
    if not cut.isprintable():
        cut = cut.encode("unicode_escape", "backslashreplace").decode("ascii")
    return cut + more
