"""The served OpenAPI description, fuzzed by schemathesis with a valid token: no 5xx, and every
response conforms to the schema (status codes, content types, bodies, headers)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from restitution import consent
from restitution.models import Dataset
from tests.api.test_isolation_property import issue_token
from tests.api.test_records_api import _contract, _day_block, write
from tests.conftest import reset_rate_limits
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db(transaction=True)
@pytest.fixture
def api_token(personas):
    write(personas.alice, CURVE, [_day_block(d) for d in range(1, 6)])
    write(personas.alice, CONTRACTS, [_contract("A1")])
    grant = consent.create_grant(customer=personas.alice, client=personas.trusted,
                                 datasets=list(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS])),
                                 duration="12m")
    return issue_token(grant)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def test_the_api_honours_its_own_description(live_server, api_token):
    # Over real HTTP against the live test server: what an outside fuzzer would see.
    loaded = schemathesis.openapi.from_url(live_server.url + "/api/schema/?format=json")
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            reset_rate_limits()
            case.call_and_validate(base_url=live_server.url, headers={"Authorization": f"Bearer {api_token}"},
                                   checks=CHECKS)

        fuzz()
