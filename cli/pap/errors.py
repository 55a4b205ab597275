"""Every failure pap reports: one line, and a distinct exit status per kind."""

# Exit statuses: scripts branch on them.
OK = 0
FAILED = 1
USAGE = 2
NOT_SIGNED_IN = 3
NO_ACCESS = 4
FORBIDDEN = 5
UNREACHABLE = 6
BAD_CONFIG = 7


class PapError(Exception):
    def __init__(self, message: str, *, status: int = FAILED, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.hint = hint
