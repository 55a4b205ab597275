"""Reads the messages Django's file email backend wrote, for the embedded mail viewer.

The backend appends each message to `<EMAIL_FILE_PATH>/<YYYYMMDD-HHMMSS>-<n>.log`, followed by
a line of 79 dashes; one file can hold several messages sent over one connection.
"""

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings

_SEPARATOR = b"\n" + b"-" * 79 + b"\n"
_FILE_NAME = re.compile(r"\A(\d{8}-\d{6}-\d{1,32})\.log\Z")
_MESSAGE_ID = re.compile(r"\A(\d{8}-\d{6}-\d{1,32})-(\d{1,4})\Z")
_MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class MailMessage:
    id: str
    subject: str
    sender: str
    to: str
    date: datetime | None
    text: str
    has_html: bool


def mail_directory() -> Path:
    if settings.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":
        return Path(settings.EMAIL_FILE_PATH)
    return Path(settings.EMAIL_MAIL_DIR)


def _parse(message_id: str, raw: bytes) -> MailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    text = text_part.get_content() if text_part is not None else ""
    try:
        date = parsedate_to_datetime(parsed["Date"]) if parsed["Date"] else None
    except (TypeError, ValueError):
        date = None
    return MailMessage(
        id=message_id,
        subject=str(parsed["Subject"] or "(no subject)"),
        sender=str(parsed["From"] or ""),
        to=str(parsed["To"] or ""),
        date=date,
        text=text,
        has_html=html_part is not None,
    )


def _messages_in(path: Path) -> list[MailMessage]:
    match = _FILE_NAME.match(path.name)
    if not match or not path.is_file() or path.stat().st_size > _MAX_FILE_BYTES:
        return []
    chunks = [chunk for chunk in path.read_bytes().split(_SEPARATOR) if chunk.strip()]
    return [_parse(f"{match.group(1)}-{index}", chunk) for index, chunk in enumerate(chunks)]


def _log_files() -> list[Path]:
    directory = mail_directory()
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if _FILE_NAME.match(p.name)]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def latest_messages(limit: int = 50) -> list[MailMessage]:
    """The newest `limit` messages, newest first."""
    found: list[MailMessage] = []
    for path in reversed(_log_files()):
        found.extend(reversed(_messages_in(path)))
        if len(found) >= limit:
            break
    return found[:limit]


def message_get(message_id: str) -> MailMessage | None:
    match = _MESSAGE_ID.match(message_id or "")
    if not match:
        return None
    path = mail_directory() / f"{match.group(1)}.log"
    messages = _messages_in(path)
    index = int(match.group(2))
    return messages[index] if index < len(messages) else None
