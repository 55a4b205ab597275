"""The embedded mailbox page and the show_mail command."""

from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client


@pytest.fixture
def file_mail(settings: object, tmp_path: Path) -> Path:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"  # type: ignore[attr-defined]
    settings.EMAIL_FILE_PATH = str(tmp_path)  # type: ignore[attr-defined]
    return tmp_path


def send_two() -> None:
    connection = mail.get_connection()
    first = mail.EmailMultiAlternatives(
        "First subject", "Open http://testserver/invitations/abc/ now.", "from@x.test", ["a@x.test"]
    )
    first.attach_alternative("<p>html</p>", "text/html")
    second = mail.EmailMessage("Second subject", "Plain body.", "from@x.test", ["b@x.test"])
    connection.send_messages([first, second])


@pytest.mark.django_db
def test_mailbox_lists_and_shows_messages_when_embedded(
    file_mail: Path, settings: object, client: Client
) -> None:
    settings.PORTAL_EMBEDDED = True  # type: ignore[attr-defined]
    send_two()
    page = client.get("/dev/mail/")
    assert page.status_code == 200
    body = page.content.decode()
    assert body.index("Second subject") < body.index("First subject")  # newest first
    message_id = page.context["messages_list"][1].id
    detail = client.get(f"/dev/mail/{message_id}/")
    assert detail.status_code == 200
    assert '<a href="http://testserver/invitations/abc/"' in detail.content.decode()


@pytest.mark.django_db
def test_mailbox_is_404_unless_embedded_or_debug(
    file_mail: Path, settings: object, client: Client
) -> None:
    settings.PORTAL_EMBEDDED = False  # type: ignore[attr-defined]
    settings.DEBUG = False  # type: ignore[attr-defined]
    send_two()
    assert client.get("/dev/mail/").status_code == 404
    from accounts import mailbox

    message_id = mailbox.latest_messages()[0].id
    assert client.get(f"/dev/mail/{message_id}/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["..%2F..%2Fetc%2Fpasswd", "x", "20990101-000000-1-999", "9" * 200])
def test_mailbox_rejects_unknown_ids(
    file_mail: Path, settings: object, client: Client, bad: str
) -> None:
    settings.PORTAL_EMBEDDED = True  # type: ignore[attr-defined]
    send_two()
    assert client.get(f"/dev/mail/{bad}/").status_code == 404


def test_show_mail_prints_the_latest(file_mail: Path, capsys: pytest.CaptureFixture) -> None:
    send_two()
    call_command("show_mail", "--last", "1")
    out = capsys.readouterr().out
    assert "Second subject" in out
    assert "First subject" not in out
    call_command("show_mail", "--last", "5")
    out = capsys.readouterr().out
    assert out.index("First subject") < out.index("Second subject")  # newest last
    assert "http://testserver/invitations/abc/" in out


def test_show_mail_with_an_empty_mailbox(file_mail: Path, capsys: pytest.CaptureFixture) -> None:
    call_command("show_mail")
    assert "No messages" in capsys.readouterr().out
