"""schemathesis against the served OpenAPI document, on SQLite and PostgreSQL: no 5xx, no answer
that breaks the document, and every request the document calls valid is accepted.

NUDGEFLOW_FUZZ_EXAMPLES sets the generated requests per operation (`make fuzz-api` runs many)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from engine.campaigns import import_file
from engine.config import Settings
from engine.db import write_transaction
from engine.executor import run
from engine.seed import seed_demo
from engine.users import create_token, create_user
from tests.campaign_docs import BIRTHDAY, SEGMENTS, TEMPLATES
from tests.conftest import Db

# The suite's run is the same every time (derandomized); a long run explores afresh.
LONG_RUN = "NUDGEFLOW_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("NUDGEFLOW_FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, positive_data_acceptance]
# Bodies that mean more than their shape says (a campaign's graph names segments and
# templates that must exist, a record names a customer): schemathesis generates the query and
# path parameters of these operations around one valid body, so "valid data is accepted"
# holds for the parameters. Every other body is generated from the document too.
BIRTHDAY_V2 = {**BIRTHDAY, "key": "birthday-bonus-2"}
VALID_BODIES: dict[str, Any] = {
    "POST /api/v1/campaigns": BIRTHDAY_V2,
    "POST /api/v1/campaigns/validate": BIRTHDAY_V2,
    "PUT /api/v1/campaigns/{key}": BIRTHDAY_V2,
    "POST /api/v1/segments": SEGMENTS[0],
    "PUT /api/v1/segments/{key}": SEGMENTS[0],
    "POST /api/v1/segments/preview": {"rules": SEGMENTS[0]["rules"], "limit": 3},
    "POST /api/v1/templates": TEMPLATES[0],
    "PUT /api/v1/templates/{key}": TEMPLATES[0],
    "POST /api/v1/templates/preview": {"template": TEMPLATES[0], "customer": "D000001"},
    "POST /api/v1/templates/{key}/preview": {"customer": "D000001"},
    "POST /api/v1/templates/test-send": {"template": TEMPLATES[0], "customer": "D000001",
                                         "to": "+27821234567"},
    "POST /api/v1/customers/bulk": {"records": [{"external_id": "F1", "first_name": "Fuzz"}]},
    "PUT /api/v1/customers/{external_id}": {"first_name": "Fuzz"},
    "POST /api/v1/invoices/bulk": {"records": [
        {"external_id": "FI1", "customer_external_id": "D000001", "amount": "10.00",
         "due_date": "2026-03-31"}]},
    "PUT /api/v1/invoices/{external_id}": {"customer_external_id": "D000001",
                                           "amount": "10.00", "due_date": "2026-03-31"},
    "PUT /api/v1/column-sets/{name}": {"columns": ["external_id", "paid_ratio"]},
    "POST /api/v1/blasts": {"segment": "member-1y", "date": "2026-03-02", "all": True,
                            "template": "spring-offer"},
    "POST /api/v1/blasts/preview": {"segment": "member-1y", "date": "2026-03-02",
                                    "all": True, "template": "spring-offer"},
    # expires_at and lifetime_days exclude each other, and only added points expire.
    "POST /api/v1/customers/{external_id}/points": {"amount": 5, "reason": "Fuzz"},
    "POST /api/v1/events": {"id": "FE1", "customer": "D000001", "name": "registered",
                            "at": "2026-03-02T10:00:00Z", "properties": {"plan": "gold"}},
}


@pytest.fixture
def api_schema(db: Db, tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    from web import create_app

    with write_transaction(db.engine) as conn:
        create_user(conn, "admin", "admin", "a long enough password")
        token = {"Authorization": f"Bearer {create_token(conn, 'admin')}"}
    # Real data behind the answers: demo customers, the example campaigns, a run, messages.
    seed_demo(db.engine, 60, "ZA", seed=3, today=date(2026, 3, 2))
    import_file(db.engine, Path(__file__).parent.parent / "campaigns.example.json")
    for key in ("birthday-bonus", "past-due-blast", "installment-reminder"):
        run(db.engine, key, date(2026, 3, 2))
    # Test sends go out through the file provider: into the test's own folder.
    app = create_app({"NUDGEFLOW_SETTINGS": Settings(database_url=db.url, secret_key="k",
                                                     outbox_dir=tmp_path / "outbox"),
                      "TESTING": True})
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=token), token
    app.extensions["nudgeflow_engine"].dispose()


def test_api_conforms_and_accepts_valid_requests(api_schema: tuple[Any, dict[str, str]]
                                                 ) -> None:
    """Every operation, EXAMPLES generated valid requests each."""
    schema, token = api_schema
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    with_body = {op.label for op in operations if op.body}
    assert set(VALID_BODIES) <= with_body
    for operation in operations:
        fixed = {"body": VALID_BODIES[operation.label]} if operation.label in VALID_BODIES else {}

        @given(case=operation.as_strategy(**fixed))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  derandomize=not LONG_RUN, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers=token, checks=CHECKS)

        try:
            check()
        except FailureGroup as exc:  # collect every operation's failures, then report them all
            failures.append(f"{operation.label}: {exc}")
        except Exception as exc:  # a 500's exception, propagated by the test app
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}")
    assert failures == [], "\n\n".join(failures)
