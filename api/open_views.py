"""The open endpoints: `pap login`'s device flow (RFC 8628), what a problem `type` means,
and the problem+json answer for any unknown path under /api/v1/."""

from typing import Any, ClassVar

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api import services
from api.problems import PROBLEM_TYPES, ProblemException, problem_type
from core.ratelimit import rate_limit_consume
from core.web import no_store


class DeviceCodeView(APIView):
    """Starts `pap login`. No `verification_uri_complete` (RFC 8628 makes it optional): a URL
    carrying the user code would land in request logs; the person types the code instead."""

    authentication_classes: ClassVar[list[Any]] = []
    permission_classes: ClassVar[list[Any]] = [permissions.AllowAny]
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"POST": (429,)}  # per client IP

    @extend_schema(request=s.DeviceCodeInput, responses=s.DeviceCodeOutput, summary="pap login")
    @sensitive_variables("codes")
    def post(self, request: Request) -> Response:
        ip = request.META.get("REMOTE_ADDR", "")
        wait = rate_limit_consume(
            scope="api-device-code", key=ip, rate=settings.PORTAL_API_DEVICE_CODE_RATE
        )
        if wait is not None:
            raise ProblemException(
                "rate-limited",
                gettext("Too many sign-ins started from here."),
                status_code=429,
                retry_after=wait,
            )
        body = s.DeviceCodeInput(data=request.data)
        body.is_valid(raise_exception=True)
        codes = services.device_authorization_start(client_name=body.validated_data["client_name"])
        verification = request.build_absolute_uri(reverse("account_device"))
        user_code = services.format_user_code(codes.user_code)
        return no_store(
            Response(
                {
                    "device_code": codes.device_code,
                    "user_code": user_code,
                    "verification_uri": verification,
                    "expires_in": int(services.DEVICE_CODE_TTL.total_seconds()),
                    "interval": services.DEVICE_POLL_INTERVAL_SECONDS,
                }
            ),
            secret=True,
        )


DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class DeviceTokenView(APIView):
    """The CLI's poll. Answers as RFC 8628 §3.5 says (OAuth errors), not problem+json: the
    device flow's clients expect the standard `error` member."""

    authentication_classes: ClassVar[list[Any]] = []
    permission_classes: ClassVar[list[Any]] = [permissions.AllowAny]
    # The token it hands out is recorded in the audit log (`api.token_created`).
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"POST": (503,)}

    @extend_schema(
        request=s.DeviceTokenInput,
        responses={
            200: s.DeviceTokenOutput,
            (400, "application/json"): OpenApiResponse(
                s.DeviceTokenError,
                description="An RFC 8628 error (JSON), or a problem when the body is not a poll.",
            ),
        },
        summary="Poll",
    )
    @sensitive_variables("data", "created")
    def post(self, request: Request) -> Response:
        body = s.DeviceTokenInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["grant_type"] != DEVICE_GRANT:
            return Response({"error": "unsupported_grant_type"}, status=400)
        wait = rate_limit_consume(
            scope="api-device-poll",
            key=data["device_code"],
            rate=settings.PORTAL_API_DEVICE_POLL_RATE,
        )
        if wait is not None:
            return Response({"error": "slow_down", "error_description": "Poll less often."}, 400)
        try:
            created = services.device_token_exchange(device_code=data["device_code"])
        except services.DeviceFlowError as error:
            return Response({"error": error.code, "error_description": error.description}, 400)
        token = created.token
        return no_store(
            Response(
                {
                    "access_token": created.raw,
                    "token_type": "Bearer",
                    "expires_in": int((token.expires_at - token.created_at).total_seconds()),
                    "scope": " ".join(token.scopes),
                    "organisation": token.organisation.slug if token.organisation else "",
                }
            ),
            secret=True,
        )


class ProblemTypeView(APIView):
    """What a problem `type` means: the `type` URIs resolve here."""

    authentication_classes: ClassVar[list[Any]] = []
    permission_classes: ClassVar[list[Any]] = [permissions.AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request, slug: str) -> Response:
        if slug not in PROBLEM_TYPES:
            raise ProblemException("not-found", gettext("No such problem type."), status_code=404)
        title, description = PROBLEM_TYPES[slug]
        return Response(
            {"type": problem_type(slug), "title": str(title), "description": str(description)}
        )


class UnknownPathView(APIView):
    """Any other path under /api/v1/: a problem document, not the portal's HTML 404 page."""

    authentication_classes: ClassVar[list[Any]] = []
    permission_classes: ClassVar[list[Any]] = [permissions.AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        raise ProblemException(
            "not-found",
            gettext("There is no such API operation; see /api/v1/docs/."),
            status_code=404,
        )

    post = put = patch = delete = get
