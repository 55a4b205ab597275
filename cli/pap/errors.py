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


def describe(error: BaseException) -> str:
    """An exception as `Name: text`, for a line that says what went wrong."""
    name, text = type(error).__name__, str(error)
    if not text or text.startswith(name):
        return text or name
    return f"{name}: {text}"


def one_line(text: str) -> str:
    """`text` on one line with no control characters: what a server or an exception says
    reaches the terminal, so no newline splits the line and no escape sequence reaches it."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
