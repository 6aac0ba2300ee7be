"""User-facing errors: one line that names the problem and the fix, exit code 2."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem with the user's input or environment that the user can fix.

    The CLI prints ``str(error)`` on one line and exits with code 2, never a traceback.
    """

    exit_code = 2

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"error: {problem} — {fix}")


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's first line of text (its type's name when it has none), cut to ``limit`` characters: what
    a :class:`HarnessError` quotes of a library's error."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]
