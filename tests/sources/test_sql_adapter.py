"""SQLAdapter against a temporary SQLite file and against the MariaDB server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import event

from restitution.sources import adapter_class
from restitution.sources.base import SourceError, content_hash
from restitution.sources.sql import SQLAdapter
from tests.conftest import missing, per_worker

QUERY = (
    "SELECT c.NUM_CONTRAT, c.NUM_SOCIETAIRE, s.NOM, c.PRIME, c.DT_FIN "
    "FROM CONTRATS c JOIN SOCIETAIRES s ON s.NUM_SOCIETAIRE = c.NUM_SOCIETAIRE "
    "WHERE {customer_filter} ORDER BY c.NUM_CONTRAT"
)
OPTIONS: dict[str, Any] = {
    "yield_per": 2,
    "datasets": {"contracts": {"query": QUERY, "customer_column": "c.NUM_SOCIETAIRE"}},
}
SOCIETAIRES = [("S001", "Hélène Dupré"), ("S002", "Zoë Martin"), ("S003", "Jean Petit")]
CONTRATS = [
    ("C-1", "S001", 120, "20251231"),
    ("C-2", "S001", 80, None),
    ("C-3", "S002", 45, "20240101"),
    ("C-4", "S003", 300, None),
]


def adapter(url: str, limiter: Any = None, options: dict[str, Any] | None = None) -> SQLAdapter:
    return SQLAdapter(options=options or OPTIONS, connection=url, limiter=limiter)


def read_all(source: SQLAdapter, customer: str | None) -> list[Any]:
    try:
        return list(source.read("contracts", customer_key=customer,
                                customer_field="NUM_SOCIETAIRE"))
    finally:
        source.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    path = tmp_path / "insurer.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE SOCIETAIRES (NUM_SOCIETAIRE TEXT PRIMARY KEY, NOM TEXT)")
        db.execute("CREATE TABLE CONTRATS (NUM_CONTRAT TEXT PRIMARY KEY, NUM_SOCIETAIRE TEXT,"
                   " PRIME INTEGER, DT_FIN TEXT)")
        db.executemany("INSERT INTO SOCIETAIRES VALUES (?, ?)", SOCIETAIRES)
        db.executemany("INSERT INTO CONTRATS VALUES (?, ?, ?, ?)", CONTRATS)
    return f"sqlite:///{path}"


def test_registered_under_its_kind() -> None:
    assert adapter_class("sql") is SQLAdapter


def test_reads_only_the_customers_rows(sqlite_url: str, limiter: Any) -> None:
    rows = read_all(adapter(sqlite_url, limiter), "S001")
    assert [row.values for row in rows] == [
        {"NUM_CONTRAT": "C-1", "NUM_SOCIETAIRE": "S001", "NOM": "Hélène Dupré", "PRIME": 120,
         "DT_FIN": "20251231"},
        {"NUM_CONTRAT": "C-2", "NUM_SOCIETAIRE": "S001", "NOM": "Hélène Dupré", "PRIME": 80,
         "DT_FIN": None},
    ]
    # Without a declared row key, a row is located by its content, not its position.
    assert [row.locator for row in rows] == [f"contracts {content_hash(row.values)}" for row in rows]
    assert all(row.error is None for row in rows)
    assert limiter.calls == 1


def test_full_scan_reads_everyone(sqlite_url: str) -> None:
    rows = read_all(adapter(sqlite_url), None)
    assert [row.values["NUM_CONTRAT"] for row in rows] == ["C-1", "C-2", "C-3", "C-4"]
    assert rows[0].locator == f"contracts {content_hash(rows[0].values)}"


def test_a_row_key_locates_a_row_by_table_and_primary_key_wherever_it_moves(sqlite_url: str) -> None:
    options = {"datasets": {"contracts": {"query": QUERY, "customer_column": "c.NUM_SOCIETAIRE",
                                          "table": "CONTRATS", "row_key": ["NUM_CONTRAT"]}}}
    before = {row.values["NUM_CONTRAT"]: row.locator for row in read_all(adapter(sqlite_url, options=options), None)}
    assert before["C-3"] == "CONTRATS NUM_CONTRAT=C-3"
    # A row above it disappears: C-3 is now the second row of the result, its locator stays.
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        db.execute("DELETE FROM CONTRATS WHERE NUM_CONTRAT IN ('C-1', 'C-2')")
    after = {row.values["NUM_CONTRAT"]: row.locator for row in read_all(adapter(sqlite_url, options=options), None)}
    assert after == {"C-3": before["C-3"], "C-4": before["C-4"]}
    # …and a customer's own read locates it the same way as the full scan.
    assert [row.locator for row in read_all(adapter(sqlite_url, options=options), "S002")] == [before["C-3"]]


@pytest.mark.parametrize("bad", [{"row_key": ["NOPE"]}, {"row_key": [1]}, {"table": 3}])
def test_a_row_key_that_is_not_a_result_column_is_permanent(sqlite_url: str, bad: dict) -> None:
    options = {"datasets": {"contracts": {"query": QUERY, "customer_column": "c.NUM_SOCIETAIRE", **bad}}}
    with pytest.raises(SourceError) as caught:
        read_all(adapter(sqlite_url, options=options), None)
    assert caught.value.permanent


@pytest.mark.parametrize("attempt",
                         ["S001' OR '1'='1", "S001 OR 1=1", "x'; DROP TABLE CONTRATS; --"])
def test_customer_key_is_a_bound_parameter(sqlite_url: str, attempt: str) -> None:
    assert read_all(adapter(sqlite_url), attempt) == []
    assert len(read_all(adapter(sqlite_url), None)) == 4  # the table is still there


def test_statement_binds_the_customer() -> None:
    sql, params = adapter("sqlite://").build_statement("contracts", "S001")
    assert "c.NUM_SOCIETAIRE = :customer" in sql
    assert "S001" not in sql
    assert params == {"customer": "S001"}
    sql, params = adapter("sqlite://").build_statement("contracts", None)
    assert "WHERE 1=1 ORDER BY" in sql and params == {}


def test_rows_are_streamed(tmp_path: Path, limiter: Any) -> None:
    path = tmp_path / "big.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE T (ID INTEGER, CUSTOMER TEXT)")
        db.executemany("INSERT INTO T VALUES (?, ?)", ((i, f"K{i % 7}") for i in range(20000)))
    options = {"yield_per": 50, "datasets": {
        "t": {"query": "SELECT ID, CUSTOMER FROM T WHERE {customer_filter} ORDER BY ID",
              "customer_column": "CUSTOMER"}}}
    source = adapter(f"sqlite:///{path}", limiter, options)
    seen: list[dict[str, Any]] = []
    event.listen(source.engine, "before_cursor_execute",
                 lambda conn, cursor, stmt, params, context, many:
                 seen.append(dict(context.execution_options)))
    rows = source.read("t", customer_key=None, customer_field="CUSTOMER")
    first = list(islice(rows, 3))
    rows.close()  # type: ignore[attr-defined]
    source.close()
    assert [row.values["ID"] for row in first] == [0, 1, 2]
    assert seen and seen[0]["stream_results"] is True and seen[0]["yield_per"] == 50
    assert limiter.calls == 1


def test_missing_table_is_permanent(sqlite_url: str) -> None:
    options = {"datasets": {"x": {"query": "SELECT * FROM NOPE WHERE {customer_filter}",
                                  "customer_column": "A"}}}
    with pytest.raises(SourceError) as caught:
        list(adapter(sqlite_url, options=options).read("x", customer_key="S001",
                                                        customer_field="A"))
    assert caught.value.permanent
    assert "no such table" in str(caught.value)
    assert "S001" not in str(caught.value)


def test_unknown_column_and_syntax_errors_are_permanent(sqlite_url: str) -> None:
    for query in ("SELECT NOPE FROM CONTRATS WHERE {customer_filter}",
                  "SELEKT * FROM CONTRATS WHERE {customer_filter}"):
        options = {"datasets": {"x": {"query": query, "customer_column": "NUM_SOCIETAIRE"}}}
        with pytest.raises(SourceError) as caught:
            list(adapter(sqlite_url, options=options).read("x", customer_key="S001",
                                                            customer_field="A"))
        assert caught.value.permanent


def test_locked_database_is_transient(sqlite_url: str) -> None:
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SourceError) as caught:
            read_all(adapter(sqlite_url + "?timeout=0.05"), "S001")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not caught.value.permanent
    assert "locked" in str(caught.value)


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://host/db",
                                 "postgresql+nosuchdriver://u:pw@h/db"])
def test_bad_urls_are_permanent_and_not_quoted(url: str) -> None:
    with pytest.raises(SourceError) as caught:
        read_all(adapter(url), "S001")
    assert caught.value.permanent
    assert "pw@" not in str(caught.value) and "not a url" not in str(caught.value)


@pytest.mark.parametrize("dataset_options", [
    {"query": "SELECT * FROM CONTRATS", "customer_column": "NUM_SOCIETAIRE"},
    {"query": "SELECT * FROM CONTRATS WHERE {customer_filter}", "customer_column": "1=1 OR A"},
    {"query": "SELECT * FROM CONTRATS WHERE {customer_filter}"},
    {"customer_column": "NUM_SOCIETAIRE"},
])
def test_unsafe_or_incomplete_configuration_is_refused(sqlite_url: str,
                                                        dataset_options: dict[str, Any]) -> None:
    with pytest.raises(SourceError) as caught:
        read_all(adapter(sqlite_url, options={"datasets": {"contracts": dataset_options}}),
                 "S001")
    assert caught.value.permanent


def test_unknown_dataset_is_permanent(sqlite_url: str) -> None:
    with pytest.raises(SourceError) as caught:
        list(adapter(sqlite_url).read("nope", customer_key=None, customer_field="A"))
    assert caught.value.permanent


def test_duplicate_column_names_are_refused(sqlite_url: str) -> None:
    query = ("SELECT c.NUM_SOCIETAIRE, s.NUM_SOCIETAIRE FROM CONTRATS c JOIN SOCIETAIRES s "
             "ON s.NUM_SOCIETAIRE = c.NUM_SOCIETAIRE WHERE {customer_filter}")
    options = {"datasets": {"contracts": {"query": query, "customer_column": "c.NUM_SOCIETAIRE"}}}
    with pytest.raises(SourceError) as caught:
        read_all(adapter(sqlite_url, options=options), "S001")
    assert caught.value.permanent and "NUM_SOCIETAIRE" in str(caught.value)


def test_engine_is_created_once_and_disposed(sqlite_url: str) -> None:
    source = adapter(sqlite_url)
    engine = source.engine
    list(source.read("contracts", customer_key="S001", customer_field="NUM_SOCIETAIRE"))
    list(source.read("contracts", customer_key="S002", customer_field="NUM_SOCIETAIRE"))
    assert source.engine is engine
    source.close()
    assert source._engine is None


# -- MariaDB -----------------------------------------------------------------------------

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
ADAPTER_DB = per_worker("adapter_test")  # parallel workers: one database each
MARIADB_URL = f"mysql+pymysql://root@127.0.0.1:3306/{ADAPTER_DB}?charset=utf8mb4"


@pytest.fixture(scope="module")
def mariadb_url() -> Iterator[str]:
    try:
        admin = pymysql.connect(**MARIADB, charset="utf8mb4", autocommit=True)
    except pymysql.err.OperationalError:
        missing("MariaDB is not reachable at 127.0.0.1:3306")
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {ADAPTER_DB}")
        cur.execute(f"CREATE DATABASE {ADAPTER_DB} CHARACTER SET utf8mb4")
        cur.execute(f"USE {ADAPTER_DB}")
        cur.execute("CREATE TABLE SOCIETAIRES (NUM_SOCIETAIRE VARCHAR(10) PRIMARY KEY,"
                    " NOM VARCHAR(100)) ENGINE=InnoDB")
        cur.execute("CREATE TABLE CONTRATS (NUM_CONTRAT VARCHAR(10) PRIMARY KEY,"
                    " NUM_SOCIETAIRE VARCHAR(10), PRIME DECIMAL(10,2), DT_FIN CHAR(8) NULL)"
                    " ENGINE=InnoDB")
        cur.executemany("INSERT INTO SOCIETAIRES VALUES (%s, %s)", SOCIETAIRES)
        cur.executemany("INSERT INTO CONTRATS VALUES (%s, %s, %s, %s)", CONTRATS)
        cur.execute("CREATE TABLE BIG (ID INT PRIMARY KEY, CUSTOMER VARCHAR(10))")
        cur.executemany("INSERT INTO BIG VALUES (%s, %s)",
                        [(i, f"K{i % 7}") for i in range(5000)])
    try:
        yield MARIADB_URL
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {ADAPTER_DB}")
        admin.close()


@pytest.mark.mariadb
def test_mariadb_reads_only_the_customers_rows(mariadb_url: str, limiter: Any) -> None:
    rows = read_all(adapter(mariadb_url, limiter), "S001")
    assert [row.values for row in rows] == [
        {"NUM_CONTRAT": "C-1", "NUM_SOCIETAIRE": "S001", "NOM": "Hélène Dupré",
         "PRIME": Decimal("120.00"), "DT_FIN": "20251231"},
        {"NUM_CONTRAT": "C-2", "NUM_SOCIETAIRE": "S001", "NOM": "Hélène Dupré",
         "PRIME": Decimal("80.00"), "DT_FIN": None},
    ]
    assert limiter.calls == 1
    assert len(read_all(adapter(mariadb_url), None)) == 4


@pytest.mark.mariadb
@pytest.mark.parametrize("attempt", ["S001' OR '1'='1", "S001\\' OR 1=1 -- ", "' OR ''='"])
def test_mariadb_customer_key_is_a_bound_parameter(mariadb_url: str, attempt: str) -> None:
    assert read_all(adapter(mariadb_url), attempt) == []


@pytest.mark.mariadb
def test_mariadb_streams_with_a_server_side_cursor(mariadb_url: str, limiter: Any) -> None:
    options = {"yield_per": 100, "datasets": {
        "big": {"query": "SELECT ID, CUSTOMER FROM BIG WHERE {customer_filter} ORDER BY ID",
                "customer_column": "CUSTOMER"}}}
    source = adapter(mariadb_url, limiter, options)
    cursors: list[str] = []
    event.listen(source.engine, "after_cursor_execute",
                 lambda conn, cursor, *args: cursors.append(type(cursor).__name__))
    rows = source.read("big", customer_key=None, customer_field="CUSTOMER")
    first = list(islice(rows, 3))
    rows.close()  # type: ignore[attr-defined]
    assert [row.values["ID"] for row in first] == [0, 1, 2]
    assert "SSCursor" in cursors
    assert len(list(source.read("big", customer_key="K3", customer_field="CUSTOMER"))) == 714
    source.close()
    assert limiter.calls == 2


@pytest.mark.mariadb
def test_mariadb_unreachable_is_transient_and_hides_the_password() -> None:
    url = "mysql+pymysql://root:s3cr3t-pw@127.0.0.1:1/adapter_test?connect_timeout=2"
    with pytest.raises(SourceError) as caught:
        read_all(adapter(url), "S001")
    assert not caught.value.permanent
    message = str(caught.value)
    assert "s3cr3t-pw" not in message and "connect_timeout" not in message
    assert "mysql+pymysql://127.0.0.1:1/adapter_test" in message


@pytest.mark.mariadb
def test_mariadb_missing_table_and_column_are_permanent(mariadb_url: str) -> None:
    for query in ("SELECT * FROM NOPE WHERE {customer_filter}",
                  "SELECT NOPE FROM CONTRATS WHERE {customer_filter}"):
        options = {"datasets": {"x": {"query": query, "customer_column": "NUM_SOCIETAIRE"}}}
        with pytest.raises(SourceError) as caught:
            read_all(adapter(mariadb_url, options=options), None)
        assert caught.value.permanent, str(caught.value)


@pytest.mark.mariadb
def test_mariadb_refused_credentials_are_permanent(mariadb_url: str) -> None:
    url = "mysql+pymysql://nobody_here:wrong-pw@127.0.0.1:3306/adapter_test"
    with pytest.raises(SourceError) as caught:
        read_all(adapter(url), "S001")
    assert caught.value.permanent
    assert "wrong-pw" not in str(caught.value)


@pytest.mark.mariadb
def test_mariadb_lock_wait_timeout_is_transient(mariadb_url: str) -> None:
    holder = pymysql.connect(**MARIADB, database=ADAPTER_DB, autocommit=True)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLES CONTRATS WRITE, SOCIETAIRES WRITE")
        url = mariadb_url + "&init_command=SET%20SESSION%20lock_wait_timeout%3D1"
        with pytest.raises(SourceError) as caught:
            read_all(adapter(url), "S001")
    finally:
        with holder.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        holder.close()
    assert not caught.value.permanent
    assert "1205" in str(caught.value)
