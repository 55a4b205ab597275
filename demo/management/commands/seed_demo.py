"""Demo organisations and people for `make run`. Idempotent: a second run changes nothing and
prints the same sign-ins.

Passwords are generated once and kept only in DATA_DIR/demo-users.json (mode 0600, outside
git), so they are never committed and re-runs print the same ones.
"""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from accounts import services
from accounts.models import Membership, Organisation, User
from audit.context import audit_context
from demo.cloud_seed import demo_cloud_seed
from demo.notification_seed import demo_webhook_channels_seed

CREDENTIALS_FILE_NAME = "demo-users.json"


@dataclass(frozen=True)
class DemoOrganisation:
    slug: str
    name: str
    kind: str
    account_uid: str
    enterprise_alias: str


@dataclass(frozen=True)
class DemoPerson:
    email: str
    first_name: str
    last_name: str
    organisation: str
    role: str
    persona: str


ORGANISATIONS = (
    DemoOrganisation("company-a", "Company A", Organisation.Kind.OWNER, "11223344", "company-a"),
    DemoOrganisation("company-b", "Company B", Organisation.Kind.PARTNER, "12345678", "company-b"),
)

# The first person of each organisation registers it (and becomes its admin).
PEOPLE = (
    DemoPerson("admin@company-a.example", "Olivia", "Owner", "company-a", "admin", "owner admin"),
    DemoPerson("auditor@company-a.example", "Arthur", "Auditor", "company-a", "auditor", "auditor"),
    # A second owner admin, so a role needing two approvals can be approved.
    DemoPerson(
        "approver@company-a.example",
        "Quinn",
        "Approver",
        "company-a",
        "admin",
        "second owner admin",
    ),
    DemoPerson(
        "admin@company-b.example", "Paula", "Partner", "company-b", "admin", "partner admin"
    ),
    DemoPerson("alice@company-b.example", "Alice", "", "company-b", "staff", "partner staff"),
    DemoPerson("bob@company-b.example", "Bob", "", "company-b", "staff", "partner staff"),
    DemoPerson("aaa@company-b.example", "AAA", "", "company-b", "staff", "partner staff"),
)


def credentials_path() -> Path:
    return Path(settings.DATA_DIR) / CREDENTIALS_FILE_NAME


def _load_passwords(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {entry["email"]: entry["password"] for entry in data.get("users", [])}


def _write_credentials(path: Path, passwords: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "note": "Demo sign-ins written by `manage.py seed_demo`. Local only; never commit.",
        "users": [
            {
                "email": person.email,
                "password": passwords[person.email],
                "organisation": person.organisation,
                "role": person.role,
                "persona": person.persona,
                "name": f"{person.first_name} {person.last_name}".strip(),
            }
            for person in PEOPLE
        ],
    }
    # Created with 0600 from the start, so the passwords are never world-readable.
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


class Command(BaseCommand):
    help = "Create the demo organisations (company-a, company-b) and people; print sign-ins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="do not print the sign-in table")

    def handle(self, *args: object, **options: object) -> None:
        path = credentials_path()
        passwords = _load_passwords(path)
        for person in PEOPLE:
            passwords.setdefault(person.email, secrets.token_urlsafe(12))
        with audit_context(source="command:seed_demo"), transaction.atomic():
            users = {
                person.email: self._ensure_user(person, passwords[person.email])
                for person in PEOPLE
            }
            organisations = [
                self._ensure_organisation(organisation, users) for organisation in ORGANISATIONS
            ]
            notification_lines = demo_webhook_channels_seed(organisations=organisations)
        _write_credentials(path, passwords)
        # The cloud half (connected accounts, catalogue, allow-list, partner link) lives with
        # the delegations; it makes real calls, so it runs outside the transaction above.
        with audit_context(source="command:seed_demo"):
            cloud_lines = demo_cloud_seed(cloudsim_data_dir=settings.CLOUDSIM_DATA_DIR)
        if not options["quiet"]:
            self._print_table(passwords, path)
            self.stdout.write("")
            for line in [*cloud_lines, *notification_lines]:
                self.stdout.write(line)

    def _ensure_user(self, person: DemoPerson, password: str) -> User:
        user = User.objects.filter(email__iexact=person.email).first()
        if user is None:
            user = User.objects.create_user(
                email=person.email,
                password=password,
                first_name=person.first_name,
                last_name=person.last_name,
            )
        elif not user.check_password(password):
            # The credentials file was lost or edited: make the printed password true again.
            user.set_password(password)
            user.save(update_fields=["password"])
        EmailAddress.objects.update_or_create(
            user=user, email=person.email, defaults={"verified": True, "primary": True}
        )
        return user

    def _ensure_organisation(self, demo: DemoOrganisation, users: dict[str, User]) -> Organisation:
        people = [p for p in PEOPLE if p.organisation == demo.slug]
        founder = users[people[0].email]
        organisation = Organisation.objects.filter(slug=demo.slug).first()
        if organisation is None:
            organisation = services.organisation_register(
                founder=founder,
                name=demo.name,
                kind=demo.kind,
                account_uid=demo.account_uid,
                enterprise_alias=demo.enterprise_alias,
                slug=demo.slug,
            )
        for person in people[1:]:
            user = users[person.email]
            if not Membership.objects.filter(organisation=organisation, user=user).exists():
                services.membership_create(
                    organisation=organisation, user=user, role=person.role, added_by=founder
                )
        return organisation

    def _print_table(self, passwords: dict[str, str], path: Path) -> None:
        rows = [(p.organisation, p.persona, p.email, passwords[p.email]) for p in PEOPLE]
        headers = ("organisation", "persona", "email", "password")
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

        self.stdout.write(f"Demo sign-ins (stored in {path}, readable only by you):")
        self.stdout.write(line(headers))
        self.stdout.write(line(tuple("-" * w for w in widths)))
        for row in rows:
            self.stdout.write(line(row))
