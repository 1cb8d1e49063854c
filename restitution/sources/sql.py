"""Adapter for legacy relational databases (SQLite, MariaDB/MySQL, PostgreSQL), via SQLAlchemy Core.

Each dataset is one configured SELECT whose WHERE clause carries a `{customer_filter}`
placeholder. The adapter replaces it with `<customer_column> = :customer`, the customer key
being a *bound parameter* (never interpolated into the SQL text), or with `1=1` for a full
scan. Rows are streamed through a server-side cursor, `yield_per` at a time, so memory stays
constant whatever the size of the table.

Source options::

    {"yield_per": 1000,
     "datasets": {"contracts": {
         "query": "SELECT ... FROM CONTRATS c WHERE {customer_filter} ORDER BY c.NUM_CONTRAT",
         "customer_column": "c.NUM_SOCIETAIRE"}}}

The connection is a SQLAlchemy URL, e.g. ``mysql+pymysql://reader@db:3306/insurer``.

What this module must never do:

* write: it only runs the configured SELECTs (the database account should be read-only too);
* put the customer key, or any value, into the SQL text;
* log or put in an error message the connection URL's credentials or query string, the
  bound parameters, or any row value. Error messages name the database by driver, host,
  port and database name only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    InternalError,
    NoSuchModuleError,
    NoSuchTableError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from .base import RateLimiter, RawRow, SourceAdapter, SourceError, content_hash

DEFAULT_YIELD_PER = 1000
#: Customer keys bound in one `IN (...)` read of a shard (many drivers cap bound parameters).
CUSTOMERS_PER_READ = 500
CUSTOMER_FILTER = "{customer_filter}"

# A column reference as written in SQL: optionally qualified, each part a plain identifier or
# a quoted one ("...", `...` or [...]). Anything else (spaces, operators, comments) is refused.
_IDENTIFIER_PART = r'(?:[A-Za-z_][A-Za-z0-9_$#]*|"[^"]+"|`[^`]+`|\[[^\]]+\])'
_COLUMN_RE = re.compile(rf"{_IDENTIFIER_PART}(?:\.{_IDENTIFIER_PART}){{0,2}}")

# MySQL/MariaDB server errors that PyMySQL reports as OperationalError although retrying
# cannot help: access denied, unknown database/column/function, ambiguous column.
_MYSQL_PERMANENT_CODES = frozenset({1044, 1045, 1049, 1052, 1054, 1142, 1143, 1305, 1630, 1698})
# SQLite reports schema and syntax problems as OperationalError too.
_SQLITE_PERMANENT_PREFIXES = (
    "no such table",
    "no such column",
    "no such function",
    "syntax error",
    "near ",
    "ambiguous column",
    "incomplete input",
)
_URL_IN_TEXT_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
_MAX_MESSAGE = 300


#: Engines by connection string, shared by the runs of this process (each pool checks its
#: connections before use, so a restarted database is reconnected to).
_ENGINES: dict[str, Engine] = {}


def dispose_engines() -> None:
    """Close every pooled connection to the legacy databases (tests, shutdown)."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


class SQLAdapter(SourceAdapter):
    """Reads datasets with configured SELECT statements, streaming the rows."""

    supports_full_scan = True
    supports_customer_shards = True

    def __init__(self, *, options: dict[str, Any], connection: str,
                 limiter: RateLimiter | None = None) -> None:
        super().__init__(options=options, connection=connection, limiter=limiter)
        self._engine: Engine | None = None
        self._url: URL | None = None

    # -- connection ---------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine of this connection string: one per process, created on first use and
        kept (with its pool) for the next runs; a run does not pay for opening it again."""
        if self._engine is None:
            cached = _ENGINES.get(self.connection)
            if cached is not None:
                self._engine = cached
                return cached
            url = self._parsed_url()
            try:
                self._engine = _ENGINES[self.connection] = create_engine(url, pool_pre_ping=True)
            except NoSuchModuleError:
                raise SourceError(
                    f"unknown database dialect {url.drivername!r}", permanent=True
                ) from None
            except ImportError as exc:
                raise SourceError(
                    f"database driver for {url.drivername!r} is not installed ({exc.name})",
                    permanent=True,
                ) from None
            except (ArgumentError, TypeError, ValueError):
                raise SourceError(
                    f"invalid connection options for {self._describe()}", permanent=True
                ) from None
        return self._engine

    def _parsed_url(self) -> URL:
        if self._url is None:
            try:
                self._url = make_url(self.connection)
            except (ArgumentError, ValueError):
                # The parser's message may quote the URL: say nothing about it.
                raise SourceError("the SQL connection is not a valid database URL",
                                  permanent=True) from None
        return self._url

    def _describe(self) -> str:
        """The database named without credentials or query string: driver://host:port/db."""
        url = self._url
        if url is None:
            return "the database"
        location = url.host or ""
        if url.port:
            location += f":{url.port}"
        database = url.database or ""
        if url.get_backend_name() == "sqlite":
            database = database.replace("\\", "/").rsplit("/", 1)[-1]
        return f"{url.drivername}://{location}/{database}"

    def close(self) -> None:
        # The connections went back to the process's pool when each read ended; the engine
        # stays for the next run (dispose_engines() closes them all).
        self._engine = None

    # -- reading ------------------------------------------------------------------------

    def build_statement(self, dataset: str, customer_key: str | None, *,
                        customer_keys: list[str] | None = None) -> tuple[str, dict[str, Any]]:
        """The SQL text and its bound parameters for one read (exposed for tests and checks):
        every customer, one (`customer_key`) or several (`customer_keys`, an expanding bound
        parameter: the keys never enter the SQL text either)."""
        opts = self.dataset_options(dataset)
        query = opts.get("query")
        if not isinstance(query, str) or not query.strip():
            raise SourceError(f"dataset {dataset!r}: 'query' must be a SELECT statement",
                              permanent=True)
        if CUSTOMER_FILTER not in query:
            # Without the placeholder a per-customer read would return everyone's rows.
            raise SourceError(
                f"dataset {dataset!r}: the query has no {CUSTOMER_FILTER} placeholder",
                permanent=True,
            )
        if customer_key is None and customer_keys is None:
            return query.replace(CUSTOMER_FILTER, "1=1"), {}
        column = opts.get("customer_column")
        if not isinstance(column, str) or not _COLUMN_RE.fullmatch(column):
            raise SourceError(
                f"dataset {dataset!r}: 'customer_column' must be a column name", permanent=True
            )
        if customer_keys is not None:
            return query.replace(CUSTOMER_FILTER, f"{column} IN :customers"), {"customers": list(customer_keys)}
        return query.replace(CUSTOMER_FILTER, f"{column} = :customer"), {"customer": customer_key}

    def _yield_per(self) -> int:
        value = self.options.get("yield_per", DEFAULT_YIELD_PER)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SourceError("'yield_per' must be a positive integer", permanent=True)
        return value

    def _locator(self, dataset: str, keys: list[str]):
        """Where a row is, whatever its position in the result: its table and primary key when
        the dataset's options name them (`table`, `row_key`: result columns), its content hash
        otherwise."""
        opts = self.dataset_options(dataset)
        table = opts.get("table") or dataset
        row_key = opts.get("row_key") or []
        if isinstance(row_key, str):
            row_key = [row_key]
        if not isinstance(table, str) or not isinstance(row_key, list) or any(
                not isinstance(column, str) or column not in keys for column in row_key):
            raise SourceError(f"dataset {dataset!r}: 'row_key' must name columns of the query "
                              "result and 'table' must be a name", permanent=True)

        if len(row_key) == 1:  # the usual case, on every row: one lookup, one concatenation
            (column,) = row_key
            prefix = f"{table} {column}="

            def locate_by_one(values: dict[str, Any]) -> str:
                value = values.get(column)
                return f"{table} {content_hash(values)}" if value is None else prefix + format(value)
            return locate_by_one

        def locate(values: dict[str, Any]) -> str:
            if row_key and all(values.get(column) is not None for column in row_key):
                return f"{table} " + " ".join(f"{column}={values[column]}" for column in row_key)
            return f"{table} {content_hash(values)}"
        return locate

    def read(self, dataset: str, *, customer_key: str | None,
             customer_field: str) -> Iterator[RawRow]:
        sql, params = self.build_statement(dataset, customer_key)
        yield from self._stream(dataset, text(sql), params)

    def read_customers(self, dataset: str, *, customer_keys: list[str],
                       customer_field: str) -> Iterator[tuple[str | None, RawRow]]:
        """Rows of many customers, CUSTOMERS_PER_READ keys per SELECT (`column IN (...)`)."""
        for start in range(0, len(customer_keys), CUSTOMERS_PER_READ):
            batch = customer_keys[start:start + CUSTOMERS_PER_READ]
            sql, params = self.build_statement(dataset, None, customer_keys=batch)
            statement = text(sql).bindparams(bindparam("customers", expanding=True))
            for row in self._stream(dataset, statement, params):
                yield None, row

    def _stream(self, dataset: str, statement: Any, params: dict[str, Any]) -> Iterator[RawRow]:
        yield_per = self._yield_per()
        engine = self.engine
        self.limiter.wait()
        try:
            with engine.connect() as conn:
                streaming = conn.execution_options(stream_results=True, yield_per=yield_per)
                # Closing the result first lets an abandoned server-side cursor finish
                # cleanly before the connection goes back to the pool.
                with streaming.execute(statement, params) as result:
                    keys = list(result.keys())
                    if len(set(keys)) != len(keys):
                        duplicates = sorted({k for k in keys if keys.count(k) > 1})
                        raise SourceError(
                            f"dataset {dataset!r}: the query returns several columns named "
                            f"{', '.join(duplicates)}; give them distinct aliases",
                            permanent=True,
                        )
                    locate = self._locator(dataset, keys)
                    for row in result:
                        values = dict(zip(keys, row, strict=True))
                        yield RawRow(values, locate(values))
        except SourceError:
            raise
        except SQLAlchemyError as exc:
            raise SourceError(
                f"{self._describe()}: reading {dataset!r} failed: {self._reason(exc)}",
                permanent=_is_permanent(exc),
            ) from None

    def _reason(self, exc: SQLAlchemyError) -> str:
        """A short, secret-free reason: the driver's message, never SQLAlchemy's (which
        quotes the statement and its bound parameters)."""
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            orig = exc.orig
            args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
            if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
                message = f"error {args[0]}: {args[1]}"
            else:
                message = str(orig) or type(orig).__name__
        elif isinstance(exc, NoSuchTableError):
            message = f"no such table {exc}"
        else:
            message = type(exc).__name__
            if not getattr(exc, "statement", None):
                message = f"{message}: {exc}"
        message = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        password = self._url.password if self._url is not None else None
        if password and len(str(password)) >= 4:
            message = message.replace(str(password), "***")
        message = _URL_IN_TEXT_RE.sub("<url>", message)
        return message[:_MAX_MESSAGE]


def _is_permanent(exc: SQLAlchemyError) -> bool:
    """Whether retrying later cannot help (configuration or schema problem)."""
    if isinstance(exc, (DisconnectionError, PoolTimeoutError)):
        return False
    if not isinstance(exc, DBAPIError):
        # NoSuchTableError, ArgumentError, missing bound parameter...: configuration.
        return True
    if exc.connection_invalidated:
        return False
    if isinstance(exc, OperationalError):
        orig = exc.orig
        args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
        if args and isinstance(args[0], int):
            return args[0] in _MYSQL_PERMANENT_CODES
        sqlstate = getattr(orig, "sqlstate", None)
        if isinstance(sqlstate, str):
            # PostgreSQL: 28xxx invalid authorisation, 3D000 unknown database, 42xxx schema.
            return sqlstate.startswith(("28", "3D", "42"))
        return str(orig).strip().lower().startswith(_SQLITE_PERMANENT_PREFIXES)
    if isinstance(exc, (InterfaceError, InternalError)):
        return False
    # ProgrammingError, NotSupportedError, DataError, IntegrityError: the query is wrong.
    return True
