"""Reading a RAM role the way a reconcile needs it: its trust policy and its attached policies,
the two reads side by side when the role should exist, and comparing two such reads. Shared
by the owner-role reconcile (`delegations.worker.owner_role`) and the periodic drift check
(`delegations.worker.periodic`)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cloud import policies
from cloud.client import CloudClient
from cloud.errors import CloudError
from delegations import role_plan as planner
from delegations.worker.recorder import Answer, Recorder, ask


def read_role(
    client: CloudClient,
    role_name: str,
    recorder: Recorder | None = None,
    *,
    side_client: CloudClient | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> planner.ActualRole | None:
    """GetRole and ListPoliciesForRole; None when the role does not exist.

    With `side_client` (a second client: each keeps its own last request id) the two reads go
    out side by side, which halves the wait when the role is expected to exist; otherwise
    ListPoliciesForRole is only sent once GetRole found the role. `meanwhile` runs in this
    thread while the side-by-side reads are out."""
    answers = ask_role(client, role_name, side_client=side_client, meanwhile=meanwhile)
    return role_from_answers(answers, role_name, recorder)


def ask_role(
    client: CloudClient,
    role_name: str,
    *,
    side_client: CloudClient | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[Answer]:
    """The answers of `read_role`'s requests, unread: sending them touches no database, so a
    round can send them while it moves its delegations (see `RoleSubject.first_answers`), or
    prepares what their answers will let it do (`meanwhile`, with `side_client`)."""
    if side_client is not None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            role_future = pool.submit(ask, client, lambda: client.get_role(role_name))
            policies_future = pool.submit(
                ask, side_client, lambda: side_client.list_policies_for_role(role_name)
            )
            if meanwhile is not None:
                meanwhile()
            return [role_future.result(), policies_future.result()]
    answers = [ask(client, lambda: client.get_role(role_name))]
    if answers[0].error is None and answers[0].value is not None:
        answers.append(ask(client, lambda: client.list_policies_for_role(role_name)))
    return answers


def role_from_answers(
    answers: list[Answer], role_name: str, recorder: Recorder | None = None
) -> planner.ActualRole | None:
    """The role `ask_role`'s answers show (recorded as reads of the round), or None."""
    if recorder is not None:
        target = f"role/{role_name}"
        for action, answer in zip(("GetRole", "ListPoliciesForRole"), answers, strict=False):
            recorder.record_read(action, target, answer)
    for answer in answers:
        if answer.error is not None and not (answer.value is None and _role_gone(answer.error)):
            raise answer.error
    role = answers[0].value
    if role is None:
        return None
    if answers[1].error is not None:
        return None  # deleted between the two reads: the later answer is the truth
    return planner.ActualRole.from_cloud(role, answers[1].value)


def _role_gone(error: CloudError) -> bool:
    return error.code == "EntityNotExist.Role"


def roles_match(a: planner.ActualRole | None, b: planner.ActualRole | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        same_trust = policies.trust_policy_equal(a.trust_document, b.trust_document)
    except policies.PolicyError:
        return False
    return (
        same_trust
        and a.attached_policies == b.attached_policies
        and (a.description or "") == (b.description or "")
        and a.max_session_duration == b.max_session_duration
    )
