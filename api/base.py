"""The base of every authenticated API view: token, scope, role and organisation kind checks,
and the audit origin (`source = api:token:<prefix>`) for everything the view records."""

from contextlib import ExitStack
from typing import Any, ClassVar

from django.conf import settings
from django.utils.translation import gettext, gettext_lazy
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actors import ServiceActor
from accounts.models import Organisation, User
from api import services
from api.authentication import ApiCaller, BearerTokenAuthentication
from api.models import Scope
from api.problems import PayloadTooLarge, ProblemException, StrOrPromise
from audit.context import audit_context
from core.request_id import current_client_ip, current_request_id
from core.web import MAX_BIGINT, whole_number


class ApiView(APIView):
    """`required_scopes` maps a method to the scope it needs; `roles` (None: any member, and
    service accounts for reads) and `organisation_kind` narrow who may call."""

    authentication_classes: ClassVar[list[Any]] = [BearerTokenAuthentication]
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated]
    required_scopes: ClassVar[dict[str, str]] = {"GET": Scope.READ}
    roles: ClassVar[tuple[str, ...] | None] = None
    organisation_kind: ClassVar[str | None] = None
    # Methods a service account may call here besides reads: only those whose service takes
    # a `ServiceActor` (filing and withdrawing requests), never a decision.
    service_account_writes: ClassVar[frozenset[str]] = frozenset()
    # False where the answer is a person's own (my access, my credentials).
    service_accounts_allowed: ClassVar[bool] = True
    # Refusal when the organisation is of the other kind (owner vs partner).
    kind_refusal: StrOrPromise = gettext_lazy("This is not available to your kind of organisation.")
    # The problem statuses a method answers besides those the schema infers (`api.schema`).
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {}

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The audit origin opened in `initial` must never outlive this request: a thread
        # serving the next request would otherwise attribute its events to this token.
        self._audit_scope = ExitStack()
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            self._audit_scope.close()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise PayloadTooLarge()
        super().initial(request, *args, **kwargs)
        caller = self.caller
        self._audit_scope.enter_context(
            audit_context(
                request_id=current_request_id(),
                source=f"api:token:{caller.token.prefix}",
                source_ip=current_client_ip() or "",
            )
        )
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        needed = self.required_scopes.get(method or "")
        if needed is not None and needed not in caller.scopes:
            raise ProblemException(
                "insufficient-scope",
                gettext("This needs a token with the '%(scope)s' scope.") % {"scope": needed},
                status_code=403,
                required_scope=needed,
            )
        if (
            self.organisation_kind is not None
            and caller.organisation.kind != self.organisation_kind
        ):
            raise ProblemException("forbidden", str(self.kind_refusal), status_code=403)
        if caller.user is None:
            if not self.service_accounts_allowed:
                raise ProblemException(
                    "forbidden",
                    gettext("Service accounts have no access of their own; this is a person's."),
                    status_code=403,
                )
            if method != "GET" and method not in self.service_account_writes:
                raise ProblemException(
                    "forbidden",
                    gettext("Service accounts only read, and file or withdraw requests."),
                    status_code=403,
                )
        elif self.roles is not None and caller.role not in self.roles:
            raise ProblemException(
                "forbidden",
                gettext("Your role in this organisation does not allow this."),
                status_code=403,
            )
        if needed == Scope.DECIDE:
            self._check_decisions(caller)

    def _check_decisions(self, caller: ApiCaller) -> None:
        if not services.api_decisions_allowed(organisation=caller.organisation):
            raise ProblemException(
                "decisions-disabled",
                gettext("%(organisation)s does not allow decisions through the API.")
                % {"organisation": caller.organisation.name},
                status_code=403,
            )
        if not services.token_mfa_fresh(caller.token):
            raise ProblemException(
                "mfa-required",
                gettext(
                    "Create a token right after confirming with two-factor authentication (it "
                    "allows decisions for 12 hours)."
                ),
                status_code=403,
            )

    @property
    def caller(self) -> ApiCaller:
        auth = self.request.auth
        assert isinstance(auth, ApiCaller)
        return auth

    @property
    def organisation(self) -> Organisation:
        return self.caller.organisation

    @property
    def person(self) -> User:
        """The person calling (writes are never a service account's: `initial` refuses)."""
        user = self.caller.user
        assert user is not None
        return user

    @property
    def actor(self) -> User | ServiceActor:
        """Who acts, for the services open to service accounts (`service_account_writes`)."""
        return self.caller.actor

    @property
    def with_mfa(self) -> bool:
        return services.token_mfa_fresh(self.caller.token)

    def created(self, data: Any) -> Response:
        return Response(data, status=status.HTTP_201_CREATED)


def whole_number_param(
    value: str | None, *, name: str, minimum: int = 0, maximum: int = MAX_BIGINT
) -> int | None:
    """A query parameter that is a whole number (a cursor, a page size or offset): None when
    absent; anything else that is not one, an empty value included, is a 400 naming it. A
    malformed page is never read as the first page: a client paging by offset would loop."""
    if value is None:
        return None
    # Digits first: whole_number also refuses an out-of-range one, which is a different error.
    number = whole_number(value, maximum=maximum) if value.isascii() and value.isdigit() else -1
    if number is None:
        raise ProblemException(
            "validation",
            gettext("%(name)s is out of range.") % {"name": name},
            status_code=400,
            errors={name: [gettext("Out of range.")]},
        )
    if number < minimum:
        raise ProblemException(
            "validation",
            gettext("%(name)s is a positive whole number.") % {"name": name},
            status_code=400,
            errors={name: [gettext("A positive whole number.")]},
        )
    return number
