"""The run form: grants x regions, the command, the targets and the rate control. The form
checks shapes; `runbooks.services.validate_run_choice` holds the rules (the same for every
door), and its errors come back onto these fields."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from delegations.models import Delegation
from runbooks.models import RunbookRun
from runbooks.services import RunChoice

_INSTANCE_ID = re.compile(r"\Ai-[A-Za-z0-9]{1,64}\Z")
_TAG = re.compile(r"\A([^=\s][^=]{0,127})=(.{0,128})\Z")


def target_value(delegation: Delegation, region: str) -> str:
    return f"{delegation.pk}|{region}"


class RunForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    targets = forms.MultipleChoiceField(
        label=_("Accounts x regions"), widget=forms.CheckboxSelectMultiple
    )
    command_type = forms.ChoiceField(
        label=_("Command type"), choices=RunbookRun.CommandType.choices
    )
    command_content = forms.CharField(
        label=_("Command"),
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
        strip=False,
    )
    working_dir = forms.CharField(label=_("Working directory"), max_length=255, required=False)
    timeout_seconds = forms.IntegerField(label=_("Timeout (seconds)"), initial=600)
    target_type = forms.ChoiceField(
        label=_("Instances"),
        choices=RunbookRun.TargetType.choices,
        initial=RunbookRun.TargetType.ALL,
        widget=forms.RadioSelect,
    )
    instance_ids = forms.CharField(
        label=_("Instance ids"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text=_("One per line or separated by commas, e.g. i-bp1abc."),
    )
    tags = forms.CharField(
        label=_("Tags"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text=_("key=value, one per line; an instance needs all of them."),
    )
    concurrency = forms.IntegerField(label=_("Concurrency"), initial=10)
    max_errors = forms.IntegerField(label=_("MaxErrors"), initial=0)

    def __init__(self, *args: Any, grants: dict[Delegation, frozenset[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grants = grants
        self._by_value: dict[str, tuple[Delegation, str]] = {}
        choices = []
        for delegation, regions in grants.items():
            account = delegation.managed_role.cloud_account
            for region in sorted(regions):
                value = target_value(delegation, region)
                self._by_value[value] = (delegation, region)
                label = _("%(owner)s · %(uid)s · %(role)s · %(region)s") % {
                    "owner": delegation.owner.name,
                    "uid": account.account_uid,
                    "role": delegation.managed_role.role_name,
                    "region": region,
                }
                choices.append((value, label))
        targets = self.fields["targets"]
        assert isinstance(targets, forms.MultipleChoiceField)
        targets.choices = choices

    def clean_command_content(self) -> str:
        content: str = self.cleaned_data["command_content"]
        # Browsers post CRLF; the instance runs what was typed.
        return content.replace("\r\n", "\n")

    def clean_instance_ids(self) -> list[str]:
        text = self.cleaned_data.get("instance_ids") or ""
        ids = [part for part in re.split(r"[\s,]+", text) if part]
        bad = [part for part in ids if not _INSTANCE_ID.match(part)]
        if bad:
            raise forms.ValidationError(
                _("Not an instance id: %(ids)s") % {"ids": ", ".join(bad[:3])}
            )
        return list(dict.fromkeys(ids))

    def clean_tags(self) -> list[tuple[str, str]]:
        tags = []
        for line in (self.cleaned_data.get("tags") or "").splitlines():
            if not line.strip():
                continue
            match = _TAG.match(line.strip())
            if match is None:
                raise forms.ValidationError(_("Write each tag as key=value."))
            tags.append((match.group(1).strip(), match.group(2).strip()))
        return tags

    def choice(self) -> RunChoice:
        data = self.cleaned_data
        return RunChoice(
            targets=[self._by_value[value] for value in data["targets"]],
            command_type=data["command_type"],
            command_content=data["command_content"],
            working_dir=data.get("working_dir") or "",
            timeout_seconds=data["timeout_seconds"],
            target_type=data["target_type"],
            instance_ids=data.get("instance_ids") or [],
            tags=data.get("tags") or [],
            concurrency=data["concurrency"],
            max_errors=data["max_errors"],
            title=data.get("title") or "",
        )


class DecisionForm(forms.Form):
    note = forms.CharField(
        label=_("Note"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ConsentForm(forms.Form):
    agree = forms.BooleanField(
        label=_(
            "Create OOSServiceRole in our account, trusted by oos.aliyuncs.com, with "
            "AliyunSTSAssumeRoleAccess, so OOS can run our runbooks in owners' accounts."
        )
    )


class RequirementForm(forms.Form):
    required = forms.BooleanField(required=False)
