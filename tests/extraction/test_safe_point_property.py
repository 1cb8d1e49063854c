"""The change feed's safe point, over random orders of publication, allocation, commit, rollback
and reads, on real PostgreSQL sessions, against the rule's model.

Writers are separate sessions on the test database, each doing what the store does (publish its
bound, take sequence values, write them, commit or roll back); the reader's two statements
(last value, then the in-flight locks) are separate steps, so writers act between them too.
The model: the safe point is min(last value read, lowest bound published before the locks were
read, minus one). The property: the reader's safe point is the model's; no value at or below a
safe point is ever written by a transaction still open; and a client that syncs up to each safe
point (its cursor jumping to the safe point itself) ends with every committed value, once.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restitution import store

WRITERS = 3
PROBE = "feed_safe_point_probe"

# The marker makes pytest-django create the test database; the test uses its own sessions.
pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql", reason="the safe point is PostgreSQL's")]

@pytest.fixture(scope="module")
def sessions(django_db_setup, django_db_blocker):
    """Writer sessions and a reader session on the test database, and the probe table."""
    with django_db_blocker.unblock():
        params = connections["default"].settings_dict
        kwargs = {"dbname": params["NAME"], "user": params["USER"], "host": params["HOST"] or None,
                  "port": params["PORT"] or None, "password": params["PASSWORD"] or None}
        reader = psycopg.connect(**kwargs, autocommit=True)
        writers = [psycopg.connect(**kwargs) for _ in range(WRITERS)]
        reader.execute(f"CREATE TABLE IF NOT EXISTS {PROBE} (seq bigint PRIMARY KEY)")
        try:
            yield reader, writers
        finally:
            for writer in writers:
                writer.rollback()
                writer.close()
            reader.execute(f"DROP TABLE IF EXISTS {PROBE}")
            reader.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_the_safe_point_never_passes_a_write_in_flight(sessions, data):
    reader, writers = sessions
    for writer in writers:  # a failed example may have left one open
        writer.rollback()
    reader.execute(f"TRUNCATE {PROBE}")
    cursor = reader.cursor()
    model_last = int(cursor.execute(store.LAST_VALUE_SQL).fetchone()[0])
    bounds: dict[int, int] = {}  # open writer → its published bound (the model)
    taken: dict[int, list[int]] = {}  # open writer → the values it wrote
    committed: set[int] = set()
    seen: list[int] = []
    client_cursor = model_last  # the client starts synced up to now
    last_read: int | None = None

    def sync(safe: int) -> None:
        nonlocal client_cursor
        rows = cursor.execute(f"SELECT seq FROM {PROBE} WHERE seq > %s AND seq <= %s ORDER BY seq",  # noqa: S608
                              [client_cursor, safe]).fetchall()
        seen.extend(seq for (seq,) in rows)
        client_cursor = max(client_cursor, safe)

    def end(w: int, commit: bool) -> None:
        if commit:
            writers[w].commit()
            committed.update(taken.get(w, []))
        else:
            writers[w].rollback()
        bounds.pop(w, None)
        taken.pop(w, None)

    for _ in range(data.draw(st.integers(5, 60), label="steps")):
        # Each step is one of the actions possible now (a writer begins, takes values, commits or
        # rolls back; the reader takes its next statement).
        possible = [("begin", w) for w in range(WRITERS) if w not in bounds]
        possible += [(kind, w) for w in bounds for kind in ("take", "take", "commit", "abort")]
        possible.append(("read_last", None) if last_read is None else ("read_locks", None))
        kind, *args = data.draw(st.sampled_from(possible))
        if kind == "take":
            args.append(data.draw(st.integers(1, 3)))
        if kind == "begin" and args[0] not in bounds:
            writers[args[0]].execute(store.PUBLISH_SQL)
            bounds[args[0]] = model_last + 1
        elif kind == "take" and args[0] in bounds:
            w, count = args
            values = [row[0] for row in writers[w].execute(
                f"SELECT nextval('{store._PG_SEQUENCE}') FROM generate_series(1, %s)", [count]).fetchall()]
            assert all(v > model_last for v in values)
            model_last = max(values)
            writers[w].execute(f"INSERT INTO {PROBE} SELECT unnest(%s::bigint[])", [values])
            taken.setdefault(args[0], []).extend(values)
        elif kind in ("commit", "abort") and args[0] in bounds:
            end(args[0], kind == "commit")
        elif kind == "read_last":
            last_read = int(cursor.execute(store.LAST_VALUE_SQL).fetchone()[0])
            assert last_read == model_last
        elif kind == "read_locks" and last_read is not None:
            row = cursor.execute(store.IN_FLIGHT_SQL).fetchone()
            safe = last_read if row is None else min(last_read, int(row[0]) - 1)
            assert safe == min([last_read] + [b - 1 for b in bounds.values()])  # the model
            in_flight = [v for values in taken.values() for v in values]
            assert all(v > safe for v in in_flight), (safe, in_flight)
            sync(safe)
            last_read = None
    for w in list(bounds):
        end(w, data.draw(st.booleans(), label=f"writer {w} commits"))
    sync(store.safe_point(cursor))
    assert sorted(seen) == sorted(committed)
    assert len(seen) == len(set(seen))
