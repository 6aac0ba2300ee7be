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
