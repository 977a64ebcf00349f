"""Roles and what each may do: the one table every route's permission check reads.

Minimum necessary (HIPAA 164.514(d)): a role gets a PHI permission only when its daily work needs
patients' details. Automation engineers and leadership see automations, runs and counts, never a
patient; compliance reads the audit log (which names resources, not their content).
"""

from __future__ import annotations

from enum import StrEnum

from clinicflow.errors import InputError

__all__ = [
    "CLINICAL_ROLES",
    "PHI_PERMISSIONS",
    "ROLE_PERMISSIONS",
    "Permission",
    "Role",
    "parse_role",
    "role_may",
]


class Role(StrEnum):
    """The roles of a practice's staff (one per user)."""

    FRONT_DESK = "front-desk"
    SCHEDULER = "scheduler"
    NURSE = "nurse"
    PHYSICIAN = "physician"
    BILLING = "billing"
    AUTOMATION_ENGINEER = "automation-engineer"
    LEADERSHIP = "leadership"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


# The roles that answer patients' clinical questions: the on-call rota, urgent-message
# alerts and the on-screen alarm are theirs.
CLINICAL_ROLES = frozenset({Role.NURSE, Role.PHYSICIAN})


class Permission(StrEnum):
    """What a route needs; also the scopes a personal access token may carry."""

    ACCOUNT = "account"  # one's own password, MFA, tokens and sign-out: everyone
    TODAY_VIEW = "today:view"  # the Today board: patients' names and visit times
    PATIENTS_VIEW = "patients:view"  # a patient's detail
    WORK_VIEW = "work:view"  # the review queue (descriptions may name patients)
    WORK_ACT = "work:act"  # claim, note, resolve, hand to another pool
    MESSAGES_VIEW = "messages:view"  # patients' messages in and out, the sandbox outbox
    MESSAGES_POST = "messages:post"  # post a patient's message for triage (API, portal bridge)
    AUTOMATIONS_VIEW = "automations:view"  # automations, runs, failures (no PHI)
    AUTOMATIONS_MANAGE = "automations:manage"  # enable, disable, run now, dry run
    SCHEDULE_DECIDE = "schedule:decide"  # accept or dismiss an overbooking suggestion
    ONCALL_VIEW = "oncall:view"
    ONCALL_EDIT = "oncall:edit"
    PROPOSALS_FILE = "proposals:file"  # propose a process to automate, start a trial
    PROPOSALS_DECIDE = "proposals:decide"  # approve, reject, ask for changes, go live, retire
    AUDIT_VIEW = "audit:view"
    USERS_MANAGE = "users:manage"
    TOKENS_USE = "tokens:use"  # create personal access tokens for scripts


# Permissions whose pages and API calls show PHI: each such view writes an audit row.
PHI_PERMISSIONS = frozenset(
    {
        Permission.TODAY_VIEW,
        Permission.PATIENTS_VIEW,
        Permission.WORK_VIEW,
        Permission.MESSAGES_VIEW,
    }
)

_CARE_TEAM = {
    Permission.ACCOUNT,
    Permission.TODAY_VIEW,
    Permission.PATIENTS_VIEW,
    Permission.WORK_VIEW,
    Permission.WORK_ACT,
    Permission.ONCALL_VIEW,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.FRONT_DESK: frozenset(
        _CARE_TEAM
        | {Permission.MESSAGES_VIEW, Permission.MESSAGES_POST, Permission.SCHEDULE_DECIDE}
    ),
    Role.SCHEDULER: frozenset(_CARE_TEAM | {Permission.SCHEDULE_DECIDE}),
    Role.NURSE: frozenset(
        _CARE_TEAM | {Permission.MESSAGES_VIEW, Permission.MESSAGES_POST, Permission.ONCALL_EDIT}
    ),
    Role.PHYSICIAN: frozenset(
        _CARE_TEAM | {Permission.MESSAGES_VIEW, Permission.MESSAGES_POST, Permission.ONCALL_EDIT}
    ),
    Role.BILLING: frozenset(_CARE_TEAM),
    Role.AUTOMATION_ENGINEER: frozenset(
        {
            Permission.ACCOUNT,
            Permission.AUTOMATIONS_VIEW,
            Permission.AUTOMATIONS_MANAGE,
            Permission.TOKENS_USE,
            Permission.PROPOSALS_FILE,
        }
    ),
    Role.LEADERSHIP: frozenset(
        {
            Permission.ACCOUNT,
            Permission.AUTOMATIONS_VIEW,
            Permission.PROPOSALS_FILE,
            Permission.PROPOSALS_DECIDE,
        }
    ),
    Role.COMPLIANCE: frozenset({Permission.ACCOUNT, Permission.AUDIT_VIEW}),
    Role.ADMIN: frozenset(
        {
            Permission.ACCOUNT,
            Permission.AUTOMATIONS_VIEW,
            Permission.AUTOMATIONS_MANAGE,
            Permission.ONCALL_VIEW,
            Permission.ONCALL_EDIT,
            Permission.AUDIT_VIEW,
            Permission.USERS_MANAGE,
            Permission.TOKENS_USE,
        }
    ),
}


def role_may(role: Role, permission: Permission) -> bool:
    """Whether `role` has `permission`."""
    return permission in ROLE_PERMISSIONS[role]


def parse_role(text: str) -> Role:
    """A role from its name, or an error listing the roles there are."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(role.value for role in Role)
        raise InputError(
            f"There is no role {text!r}. Choose one of: {names}.", where="role", code="user.role"
        ) from None
