"""The root of the platform's own exceptions.

Every error the project raises on purpose (bad input, an action the state does not
allow, a service that cannot be reached) derives from `EldercareError` as well as from
the built-in class it always had (`ValueError`, `LookupError`, `RuntimeError`...), so a
caller may catch either: a command line catches the root once instead of a list.
"""

from __future__ import annotations


class EldercareError(Exception):
    """Something the platform detected and reports, as opposed to a bug."""
