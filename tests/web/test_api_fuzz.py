"""The REST API under schemathesis: generated calls to every /api/v1 route never get a 5xx.

The schema is the app's own `/openapi.json`. Each call carries a personal access token of a
role that has the route's permission, so the generated input reaches the route's code instead of
stopping at the guard; a few work items exist so some ids are real. Each operation is fuzzed
through `APIOperation.as_strategy` under hypothesis, one subtest per operation (schemathesis's
pytest loader, `schemathesis.pytest.from_fixture`, fails on pytest 9.2: `Function._nodeid` is gone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema
from tests.web.staff_support import add_person, staff_settings

from clinicflow.clock import FakeClock
from clinicflow.engine import Priority, open_work_item
from clinicflow.security.accounts import StaffIdentity, find_user, identity_of
from clinicflow.security.permissions import ROLE_PERMISSIONS, Permission, Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.security.tokens import create_token
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.web import create_app
from clinicflow.web.auth import Guard
from clinicflow.web.routes import api

# One role per permission set: the front desk covers the care team's routes, the automation
# engineer the automations' (no single role has both, by design).
TOKEN_ROLES = (Role.FRONT_DESK, Role.AUTOMATION_ENGINEER)
Route = tuple[str, str]  # (METHOD, path template)
Operation = APIOperation[Any, Any, Any, Any]
# Enough to reach each route's validation and its not-found and conflict answers; the whole
# module stays within seconds on two busy cores.
EXAMPLES_PER_OPERATION = 25


def _permission_of(route: APIRoute) -> Permission | None:
    """The permission the route's guard checks (None for a public route)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if isinstance(dependency.call, Guard):
            return dependency.call.permission
        pending.extend(dependency.dependencies)
    return None


def _identity(db: Database, username: str) -> StaffIdentity:
    with db.transaction() as session:
        user = find_user(session, username)
        assert user is not None, username
        return identity_of(user)


@pytest.fixture
def config(tmp_path: Path) -> Settings:
    return staff_settings(tmp_path)


@pytest.fixture
def api_app(sqlite_db: Database, clock: FakeClock, config: Settings) -> FastAPI:
    """The app over a fresh SQLite database with a few open work items."""
    cipher = PhiCipher(keyring_from_settings(config, create=False))
    with sqlite_db.transaction() as session:
        for n, priority in enumerate((Priority.URGENT, Priority.ROUTINE, Priority.ROUTINE), 1):
            open_work_item(
                session,
                cipher,
                key=f"fuzz:item:{n}",
                pool="front-desk",
                description=f"Work item {n} for the fuzzer",
                actor="automation:test",
                now=clock.now(),
                priority=priority,
            )
    return create_app(config, db=sqlite_db, clock=clock)


@pytest.fixture
def route_tokens(sqlite_db: Database, clock: FakeClock, config: Settings) -> dict[Route, str]:
    """For each /api/v1 operation, a token of a role that may call it, with all its scopes."""
    secrets: dict[Role, str] = {}
    for role in TOKEN_ROLES:
        person = add_person(sqlite_db, config, clock, f"fuzz-{role.value}", role)
        identity = _identity(sqlite_db, person.username)
        with sqlite_db.transaction() as session:
            secrets[role] = create_token(
                session,
                identity,
                name="schemathesis",
                scopes=sorted(ROLE_PERMISSIONS[role]),
                days=30,
                now=clock.now(),
            )
    tokens: dict[Route, str] = {}
    # The API router's own routes (the app's list nests included routers); the test checks
    # that the schema's /api/v1 operations are exactly these.
    for route in api.router.routes:
        assert isinstance(route, APIRoute), route
        needs = _permission_of(route)
        assert needs is not None, f"{route.path} has no permission guard"
        holder = next((r for r in TOKEN_ROLES if needs in ROLE_PERMISSIONS[r]), None)
        assert holder is not None, f"no role in TOKEN_ROLES has {needs} for {route.path}"
        for method in route.methods or ():
            tokens[(method.upper(), route.path)] = secrets[holder]
    return tokens


@pytest.fixture
def api_schema(api_app: FastAPI) -> BaseSchema:
    """The app's own OpenAPI schema, read over ASGI as a client would read it."""
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


def _api_operations(schema: BaseSchema) -> list[Operation]:
    """The /api/v1 operations of the schema; a part schemathesis cannot read fails the test."""
    operations: list[Operation] = []
    for result in schema.include(path_regex="^/api/v1/").get_all_operations():
        assert isinstance(result, Ok), f"schemathesis cannot read the schema: {result.err()}"
        operations.append(result.ok())
    return operations


def _fuzz(operation: Operation, token: str) -> None:
    """Valid and invalid generated calls to one operation; any 5xx fails with the request."""
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=strategy)
    def call(case: schemathesis.Case[Operation]) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        case.validate_response(response, checks=[not_a_server_error])
        # A refusal would mean the input never reached the route's code.
        assert response.status_code not in (401, 403), (operation.label, response.text)

    call()


def test_no_generated_api_call_is_answered_with_a_server_error(
    api_schema: BaseSchema, route_tokens: dict[Route, str], subtests: pytest.Subtests
) -> None:
    operations = _api_operations(api_schema)
    assert {(o.method.upper(), o.path) for o in operations} == set(route_tokens)
    for operation in operations:
        with subtests.test(msg=operation.label):
            _fuzz(operation, route_tokens[(operation.method.upper(), operation.path)])
