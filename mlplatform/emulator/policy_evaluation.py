"""IAM policy evaluation for one request, as AWS decides it for a role's identity policies.

    decision = evaluate(Request(role, "s3:GetObject", "arn:aws:s3:::b/models/m.tar.gz"), policies)
    decision.allowed, decision.reason

Why our own: moto's evaluator (moto.iam.access_control) turns an Allow whose condition does not
hold into an explicit Deny, knows only StringEquals-style conditions, and moto checks every service
but S3 against resource "*"; no maintained Python library evaluates IAM policies (the ones on
PyPI generate, lint or summarise them). This module implements the documented logic for what the
kit's policies use: Effect, Action/NotAction, Resource/NotResource, wildcards (* and ?, actions
case-insensitive), and the String*, Arn*, Bool and Null condition operators with IfExists and
ForAnyValue/ForAllValues. Anything else raises UnsupportedPolicy rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlplatform.errors import UnsupportedPolicy

__all__ = [
    "Decision",
    "NamedPolicy",
    "Request",
    "UnsupportedPolicy",
    "evaluate",
    "service_may_assume",
    "unused_grants",
]


@dataclass(frozen=True)
class Request:
    """One call AWS authorizes: who makes it, the action, the resource ARN and its context keys.

    ``why`` says which part of the platform makes the call (shown in refusals).
    """

    principal: str
    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    why: str = ""


@dataclass(frozen=True)
class NamedPolicy:
    """An identity policy document and its name (inline policy name or managed policy ARN)."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """The outcome: allowed, and the statements that allowed (or the one that denied) it."""

    request: Request
    allowed: bool
    statements: tuple[str, ...]
    reason: str


def evaluate(request: Request, policies: Sequence[NamedPolicy]) -> Decision:
    """Decide `request` against identity policies: an explicit Deny wins, else any Allow."""
    allows: list[str] = []
    for policy in policies:
        for index, statement in enumerate(_statements(policy.document)):
            if not _applies(statement, request):
                continue
            label = f"{policy.name}#{statement.get('Sid') or index}"
            if statement.get("Effect") == "Deny":
                return Decision(request, False, (label,), f"explicitly denied by {label}")
            if statement.get("Effect") != "Allow":
                raise UnsupportedPolicy(f"{label}: Effect must be Allow or Deny")
            allows.append(label)
    if allows:
        return Decision(request, True, tuple(allows), "allowed by " + ", ".join(allows))
    return Decision(
        request,
        False,
        (),
        f"{request.principal} is not authorized to perform {request.action} on "
        f"{request.resource}: no identity-based policy allows it",
    )


def unused_grants(policies: Sequence[NamedPolicy], used: Mapping[str, Iterable[str]]) -> list[str]:
    """Allowed actions no request used: ``"<policy>#<sid>: <action>"`` per action.

    `used` maps a statement label (as in Decision.statements) to the actions it allowed.
    """
    unused: list[str] = []
    for policy in policies:
        for index, statement in enumerate(_statements(policy.document)):
            if statement.get("Effect") != "Allow" or "Action" not in statement:
                continue
            label = f"{policy.name}#{statement.get('Sid') or index}"
            actions = list(used.get(label, ()))
            for granted in _as_list(statement["Action"]):
                if not any(_glob(granted, action, ignore_case=True) for action in actions):
                    unused.append(f"{label}: {granted}")
    return unused


def service_may_assume(trust_policy: Mapping[str, Any], service: str) -> bool:
    """Whether a role's trust policy lets an AWS service (``sagemaker.amazonaws.com``) assume it."""
    allowed = False
    for statement in _statements(trust_policy):
        if not _matches_any(_as_list(statement.get("Action")), "sts:AssumeRole", ignore_case=True):
            continue
        principals = statement.get("Principal") or {}
        services = _as_list(principals.get("Service")) if isinstance(principals, dict) else []
        if service in services or principals == "*":
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _glob(pattern: str, value: str, ignore_case: bool) -> bool:
    # IAM wildcards: * any run of characters (also across "/" and ":"), ? one character.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE if ignore_case else 0
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def _matches_any(patterns: list[str], value: str, *, ignore_case: bool) -> bool:
    return any(_glob(p, value, ignore_case) for p in patterns)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    for element in ("Principal", "NotPrincipal"):
        if element in statement:
            raise UnsupportedPolicy(f"{element} belongs in resource policies, not identity ones")
    if "Action" in statement:
        action_ok = _matches_any(_as_list(statement["Action"]), request.action, ignore_case=True)
    elif "NotAction" in statement:
        action_ok = not _matches_any(
            _as_list(statement["NotAction"]), request.action, ignore_case=True
        )
    else:
        raise UnsupportedPolicy("a statement needs Action or NotAction")
    if not action_ok:
        return False
    if "Resource" in statement:
        resource_ok = _matches_any(
            _as_list(statement["Resource"]), request.resource, ignore_case=False
        )
    elif "NotResource" in statement:
        resource_ok = not _matches_any(
            _as_list(statement["NotResource"]), request.resource, ignore_case=False
        )
    else:
        raise UnsupportedPolicy("an identity policy statement needs Resource or NotResource")
    return resource_ok and _conditions_hold(statement.get("Condition") or {}, request.context)


_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
}


def _compare(operator: str, expected: str, actual: str) -> bool:
    base = operator.removeprefix("StringNot").removeprefix("ArnNot")
    base = base.removeprefix("String").removeprefix("Arn")
    if operator.startswith("Arn"):
        # ArnEquals and ArnLike behave alike: both take wildcards, compared component-wise.
        return _glob(expected, actual, ignore_case=False)
    if base == "Equals":
        return expected == actual
    if base == "EqualsIgnoreCase":
        return expected.lower() == actual.lower()
    if base == "Like":
        return _glob(expected, actual, ignore_case=False)
    raise UnsupportedPolicy(f"condition operator {operator} is not supported")


def _condition_holds(operator: str, expected: list[str], actual: list[str] | None) -> bool:
    set_op, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if operator == "Null":
        return (actual is None) == (expected[0].lower() == "true")
    if actual is None:
        # A missing key fails every positive operator and satisfies the negated ones.
        return if_exists or operator in _NEGATED
    if operator == "Bool":
        return any(a.lower() == e.lower() for a in actual for e in expected)
    if not operator.startswith(("String", "Arn")):
        raise UnsupportedPolicy(f"condition operator {operator} is not supported")
    negated = operator in _NEGATED

    def value_ok(value: str) -> bool:
        hit = any(_compare(operator, e, value) for e in expected)
        return not hit if negated else hit

    if set_op == "ForAllValues":
        return all(value_ok(v) for v in actual)
    if set_op in ("ForAnyValue", ""):
        # A single-valued key behaves as "any value" (there is one).
        return any(value_ok(v) for v in actual)
    raise UnsupportedPolicy(f"condition set operator {set_op} is not supported")


def _conditions_hold(
    conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str | Sequence[str]]
) -> bool:
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            raw = lowered.get(key.lower())
            actual = None if raw is None else _as_list(raw)
            if not _condition_holds(operator, _as_list(expected), actual):
                return False
    return True
