"""A bearer token, its client, its user, the customer and the grant in force, in one query.

Every API call starts by checking its token. DOT loads the token (with its client and user),
then the gateway loads the customer, the grant in force between that customer and the client,
and the grant's datasets: five round trips and as many ORM query compilations per call, most of
a small request's cost. Here the same rows come from one statement whose text is built once per
process from the models' metadata, and become the same model instances the ORM would give.

Nothing is cached between requests: revoking a grant, ending it or expiring it bites on the very
next call, as before. The grant's consent receipt is left deferred (the API never reads it), and
so is each dataset's JSON Schema (read where needed: the schema endpoint, CSV pages).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model
from oauth2_provider.models import get_access_token_model

from .models import Customer, Dataset, Grant, PimsClient

GRANT_DEFERRED = ("receipt",)
#: Dataset columns carried with the grant (the schema stays deferred: it is the large one).
DATASET_FIELDS = ("id", "slug", "title_en", "title_fr", "description_en", "description_fr", "schema_version",
                  "natural_key", "date_field", "field_help", "is_published")


@dataclass(frozen=True)
class _Part:
    model: type[Model]
    alias: str
    fields: tuple

    @property
    def select(self) -> str:
        return ", ".join(f'{self.alias}."{f.column}"' for f in self.fields)


def _part(model: type[Model], alias: str, deferred: tuple[str, ...] = ()) -> _Part:
    return _Part(model, alias, tuple(f for f in model._meta.concrete_fields if f.name not in deferred))


@cache
def _statement() -> tuple[str, tuple[_Part, ...]]:
    token = _part(get_access_token_model(), "t")
    client = _part(PimsClient, "a")
    user = _part(get_user_model(), "u")
    customer = _part(Customer, "c")
    grant = _part(Grant, "g", GRANT_DEFERRED)
    parts = (token, client, user, customer, grant)
    dataset_columns = ", ".join(f'd."{Dataset._meta.get_field(name).column}"' for name in DATASET_FIELDS)
    m2m = Grant._meta.get_field("datasets").remote_field.through._meta
    sql = (
        f"SELECT {', '.join(part.select for part in parts)}, "
        f"(SELECT json_agg(json_build_array({dataset_columns}) ORDER BY d.slug) "
        f'FROM "{m2m.db_table}" gd JOIN "{Dataset._meta.db_table}" d ON d.id = gd.dataset_id '
        f"WHERE gd.grant_id = g.id) "
        f'FROM "{token.model._meta.db_table}" t '
        f'LEFT JOIN "{PimsClient._meta.db_table}" a ON a.id = t.application_id '
        f'LEFT JOIN "{user.model._meta.db_table}" u ON u.id = t.user_id '
        f'LEFT JOIN "{Customer._meta.db_table}" c ON c.user_id = u.id '
        # The grant in force: the same rule as consent.active_grant().
        f'LEFT JOIN LATERAL (SELECT * FROM "{Grant._meta.db_table}" g0 WHERE g0.customer_id = c.id '
        "AND g0.client_id = t.application_id AND g0.revoked_at IS NULL AND g0.ended_at IS NULL "
        "AND g0.expires_at > %s ORDER BY g0.created_at DESC LIMIT 1) g ON true "
        "WHERE t.token_checksum = %s"
    )
    return sql, parts


def _instance(part: _Part, values) -> Model | None:
    """The model instance the ORM would build from these columns (its converters applied)."""
    if values[0] is None:  # the primary key: nothing on that side of a LEFT JOIN
        return None
    converted = [field.from_db_value(value, None, connection)
                 if value is not None and hasattr(field, "from_db_value") else value
                 for field, value in zip(part.fields, values, strict=True)]
    return part.model.from_db(connection.alias, [f.attname for f in part.fields], converted)


def _dataset(values: list) -> Dataset:
    # Inside json_build_array the JSON columns arrive parsed already: no converter to apply.
    return Dataset.from_db(connection.alias, list(DATASET_FIELDS), list(values))


def load(checksum: str, *, now: datetime):
    """The access token with this checksum, or None. Its `application` and `user` are loaded,
    the user's `customer` too, and `consent_grant` is the grant in force (None if there is
    none), with `customer`, `client` and `datasets` ready to use."""
    if connection.vendor != "postgresql":
        return _load_with_the_orm(checksum)
    sql, parts = _statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, checksum])
        row = cursor.fetchone()
    if row is None:
        return None
    instances, offset = [], 0
    for part in parts:
        instances.append(_instance(part, row[offset:offset + len(part.fields)]))
        offset += len(part.fields)
    token, client, user, customer, grant = instances
    datasets = [_dataset(values) for values in row[offset] or []]
    _cache(token, "application", client)
    _cache(token, "user", user)
    if user is not None:
        _cache_reverse(user, "customer", customer)
    if grant is not None:
        _cache(grant, "customer", customer)
        _cache(grant, "client", client)
        queryset = grant.datasets.all()
        queryset._result_cache, queryset._prefetch_done = datasets, True
        grant._prefetched_objects_cache = {"datasets": queryset}
    token.consent_grant = grant
    return token


def _load_with_the_orm(checksum: str):
    """load() in the ORM's own queries, for the embedded mode's SQLite (no LATERAL join there)."""
    token = (get_access_token_model().objects.select_related("application", "user", "user__customer")
             .filter(token_checksum=checksum).first())
    if token is None:
        return None
    from .consent import active_grant

    customer = getattr(token.user, "customer", None) if token.user is not None else None
    token.consent_grant = active_grant(customer=customer, client=token.application)
    return token


def _cache(instance: Model, name: str, related: Model | None) -> None:
    """Set a foreign key's related object as select_related() would."""
    instance._meta.get_field(name).set_cached_value(instance, related)


def _cache_reverse(instance: Model, name: str, related: Model | None) -> None:
    """Set a reverse one-to-one (user.customer); None means "no customer" without a query."""
    field = instance._meta.get_field(name)
    field.set_cached_value(instance, related)
    if related is not None:
        field.remote_field.set_cached_value(related, instance)
