"""The owner's Approve and Refuse of a named person, posted from the trust page
(`delegations.trust.views`) and answered there. Thin views over `lifecycle.named_people`,
which applies the delegation's approval rules (the trust area cannot: it sits beside them).

POST-only with CSRF; a person of another organisation is a 404. Approving needs a recent
sign-in (with MFA when the portal requires it); a refusal comes back as a message on the trust
page, a missing reason as the refuse form's error.
"""

from __future__ import annotations

from dataclasses import replace

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.permissions import ADMIN, AuthenticatedHttpRequest, organisation_member_required
from delegations.lifecycle.named_people import trusted_person_decide
from delegations.trust.forms import RejectPersonForm
from delegations.trust.views import TRUST, trusted_person_of_request


@require_POST
@organisation_member_required(roles=[ADMIN])
def trusted_person_approve(request: AuthenticatedHttpRequest, person_id: str) -> HttpResponse:
    person = trusted_person_of_request(request, person_id)
    approved = _("%(name)s is approved; the trust policy follows.") % {"name": person}
    return replace(TRUST, refused=(ValidationError, PermissionDenied)).submit(
        request,
        None,
        lambda _data, confirmation: trusted_person_decide(
            person=person, decided_by=request.user, approve=True, with_mfa=confirmation.with_mfa
        ),
        subject=person.delegation,
        done=lambda _result: messages.success(request, approved),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def trusted_person_reject(request: AuthenticatedHttpRequest, person_id: str) -> HttpResponse:
    person = trusted_person_of_request(request, person_id)
    return replace(TRUST, refused=(PermissionDenied,)).submit(
        request,
        RejectPersonForm(request.POST),
        lambda data, _step_up: trusted_person_decide(
            person=person,
            decided_by=request.user,
            approve=False,
            reason=data["reason"],
            with_mfa=False,
        ),
        subject=person.delegation,
        name="reject_form",
        confirm=False,
    )
