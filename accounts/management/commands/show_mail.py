from django.core.management.base import BaseCommand, CommandParser

from accounts import mailbox


class Command(BaseCommand):
    help = "Print the latest emails the embedded file backend wrote (newest last)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--last", type=int, default=5, help="how many messages (default 5)")

    def handle(self, *args: object, **options: object) -> None:
        last = max(1, int(options["last"]))  # type: ignore[call-overload]
        messages = list(reversed(mailbox.latest_messages(limit=last)))
        if not messages:
            self.stdout.write(f"No messages in {mailbox.mail_directory()}.")
            return
        for message in messages:
            self.stdout.write("=" * 78)
            self.stdout.write(f"Date:    {message.date.isoformat() if message.date else '-'}")
            self.stdout.write(f"From:    {message.sender}")
            self.stdout.write(f"To:      {message.to}")
            self.stdout.write(f"Subject: {message.subject}")
            self.stdout.write(f"Id:      {message.id}")
            self.stdout.write("")
            self.stdout.write(message.text.rstrip())
        self.stdout.write("=" * 78)
