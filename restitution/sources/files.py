"""Adapters for legacy flat-file exports: delimited text (CSV) and fixed-width records.

The connection is a base directory; each dataset names a glob pattern relative to it. Matching
files are read in sorted path order and their rows in file order, streaming: files are read in
chunks and split into lines as bytes, then each line is decoded strictly with the configured
encoding, so a line that does not decode becomes one error row instead of failing the file, and
memory stays bounded by the longest line (capped by ``max_line_bytes``).

CSV dataset options::

    {"pattern": "exports/**/*.csv", "encoding": "latin-1", "delimiter": ";", "quotechar": "\\"",
     "header": true}                       # header false → "fieldnames": ["A", "B", ...]

Fixed-width dataset options::

    {"pattern": "*.dat", "encoding": "cp500",
     "record_length": 100,                 # or null: one record per line
     "columns": [{"name": "PDL", "start": 0, "length": 14}, ...],   # 0-based offsets
     "skip_if_prefix": ["HDR", "TRL"]}

Options given at the top level of the source options (outside "datasets") act as defaults for
every dataset, e.g. a common "encoding".

Rows that cannot be trusted (undecodable bytes, control characters, wrong number of fields,
broken quoting) are yielded with ``error`` set and the escaped raw line as evidence. With a
customer key, only rows of that customer are yielded, and error rows only when their text
contains the key (so they can be attributed to the person).

What this module must never do:

* write, move, rename or delete a file, or read outside the base directory (patterns that are
  absolute or contain ``..``, and symlinks leading out, are refused);
* decode with ``errors="ignore"`` or otherwise silently drop bytes;
* log or put in an error message the base directory, a row value or a line of a file: errors
  name the dataset and the file's path relative to the base directory only.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO

from .base import RawRow, SourceAdapter, SourceError, content_hash

CHUNK_SIZE = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
MAX_EVIDENCE_CHARS = 10_000

# C0 controls except TAB, LF, CR; DEL; C1 controls.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character_error(text: str) -> str | None:
    """The error for the first control character of `text`, or None when it has none."""
    found = _CONTROL_RE.search(text)
    if found is None:
        return None
    return f"bad encoding: control character U+{ord(found.group()):04X}"


def evidence(text: str) -> str:
    """A line as quarantine evidence: without its line end, control characters escaped."""
    text = text.rstrip("\r\n")
    if len(text) > MAX_EVIDENCE_CHARS:
        text = text[:MAX_EVIDENCE_CHARS] + "…"
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def decode(raw: bytes, encoding: str) -> tuple[str, str | None]:
    """Decode strictly; on failure return a backslash-escaped text and the error."""
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        return (
            raw.decode(encoding, errors="backslashreplace"),
            f"bad encoding: byte 0x{bad:02x} at position {exc.start} is not valid {encoding}",
        )


def split_lines(handle: BinaryIO, separator: bytes, max_bytes: int) -> Iterator[bytes | None]:
    """Yield the lines of a binary stream, each with its separator; None for a line longer
    than `max_bytes`, whose bytes are skipped up to the next separator."""
    pending = b""
    skipping = False
    while True:
        chunk = handle.read(CHUNK_SIZE)
        if not chunk:
            break
        if skipping:
            index = chunk.find(separator)
            if index < 0:
                continue
            chunk = chunk[index + 1:]
            skipping = False
        data = pending + chunk if pending else chunk
        start = 0
        while True:
            index = data.find(separator, start)
            if index < 0:
                break
            if index + 1 - start > max_bytes:
                yield None
            else:
                yield data[start:index + 1]
            start = index + 1
        pending = data[start:]
        if len(pending) > max_bytes:
            yield None
            pending = b""
            skipping = True
    if pending:
        yield pending if len(pending) <= max_bytes else None


def split_records(handle: BinaryIO, length: int) -> Iterator[bytes]:
    """Yield fixed-length records (the last one may be short)."""
    while True:
        record = handle.read(length)
        if not record:
            return
        while len(record) < length:
            more = handle.read(length - len(record))
            if not more:
                break
            record += more
        yield record


def _attribution(names: list[str], fields: list[str], customer_field: str) -> dict[str, Any]:
    """Whose row an unreadable row is, when its customer field could still be cut out cleanly.

    Lets the quarantine name the customer; the value is only used if it is free of control
    characters (otherwise the row stays unattributed).
    """
    if customer_field not in names:
        return {}
    value = _owner(fields, len(names), names.index(customer_field))
    return {} if value is None else {"customer": value}


def _owner(fields: list[str], expected: int, index: int) -> str | None:
    """The customer key a row names, as the pipeline will see it: of a readable row, its
    customer field stripped; of an unreadable one, its attribution. None: no one."""
    if index < 0 or len(fields) != expected:
        return None
    return _customer_value(fields[index])


def _customer_value(field: str) -> str | None:
    """A customer field's value, stripped; None when empty or not clean (a control character)."""
    value = field.strip()
    if not value or control_character_error(value):
        return None
    return value


class _FileAdapter(SourceAdapter):
    """What both file adapters share: options, base directory, globbing, opening."""

    supports_full_scan = True
    supports_hash_shards = True

    def merged_options(self, dataset: str) -> dict[str, Any]:
        defaults = {k: v for k, v in self.options.items() if k != "datasets"}
        return {**defaults, **self.dataset_options(dataset)}

    def base_directory(self) -> Path:
        base = Path(self.connection)
        if not base.is_dir():
            raise SourceError("the base directory of the source does not exist or is not a "
                              "directory", permanent=True)
        return base.resolve()

    @staticmethod
    def encoding(dataset: str, opts: dict[str, Any]) -> tuple[str, bytes]:
        """The codec name and the byte that ends a line in it."""
        name = opts.get("encoding", "utf-8")
        if not isinstance(name, str):
            raise SourceError(f"dataset {dataset!r}: 'encoding' must be a codec name",
                              permanent=True)
        try:
            codec = codecs.lookup(name)
        except LookupError:
            raise SourceError(f"dataset {dataset!r}: unknown encoding {name!r}",
                              permanent=True) from None
        try:
            # Two line ends minus one: the bytes of a line end without any signature (BOM).
            one, two = "\n".encode(codec.name), "\n\n".encode(codec.name)
            newline = two[len(one):]
        except UnicodeEncodeError:
            newline = b""
        if len(newline) != 1:
            raise SourceError(
                f"dataset {dataset!r}: encoding {name!r} is not supported (lines must end "
                "with a single byte, as in UTF-8, Latin-1 or EBCDIC code pages)",
                permanent=True,
            )
        return codec.name, newline

    def matching_files(self, dataset: str, opts: dict[str, Any]) -> list[tuple[Path, str]]:
        """(absolute path, relative path) of the files matching the dataset's pattern, sorted."""
        pattern = opts.get("pattern")
        if not isinstance(pattern, str) or not pattern.strip():
            raise SourceError(f"dataset {dataset!r}: 'pattern' must be a glob pattern",
                              permanent=True)
        posix, windows = PurePosixPath(pattern), PureWindowsPath(pattern)
        if posix.is_absolute() or windows.anchor or ".." in windows.parts:
            raise SourceError(
                f"dataset {dataset!r}: the pattern must stay inside the base directory "
                "(no absolute path, no '..')",
                permanent=True,
            )
        base = self.base_directory()
        try:
            candidates = [path for path in base.glob(pattern) if path.is_file()]
        except (ValueError, NotImplementedError):
            raise SourceError(f"dataset {dataset!r}: invalid pattern", permanent=True) from None
        except OSError as exc:
            raise SourceError(f"dataset {dataset!r}: listing files failed: {exc.strerror}",
                              permanent=False) from None
        files: list[tuple[Path, str]] = []
        for path in candidates:
            relative = path.relative_to(base).as_posix()
            if not path.resolve().is_relative_to(base):
                raise SourceError(
                    f"dataset {dataset!r}: {relative} leads outside the base directory",
                    permanent=True,
                )
            files.append((path, relative))
        files.sort(key=lambda item: item[1])
        return files

    def open(self, dataset: str, path: Path, relative: str) -> BinaryIO:
        self.limiter.wait()
        try:
            return path.open("rb")
        except PermissionError:
            raise SourceError(f"dataset {dataset!r}: {relative} cannot be read (permission "
                              "denied)", permanent=True) from None
        except OSError as exc:
            # Vanished between listing and opening (rotation), network share hiccup...
            raise SourceError(f"dataset {dataset!r}: {relative} cannot be opened: "
                              f"{exc.strerror}", permanent=False) from None

    @staticmethod
    def max_line_bytes(dataset: str, opts: dict[str, Any]) -> int:
        value = opts.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SourceError(f"dataset {dataset!r}: 'max_line_bytes' must be a positive "
                              "integer", permanent=True)
        return value

    def read(self, dataset: str, *, customer_key: str | None,
             customer_field: str) -> Iterator[RawRow]:
        return self._read(dataset, customer_key, customer_field, None)

    def read_part(self, dataset: str, *, customer_field: str,
                  keep: Callable[[str | None], bool]) -> Iterator[RawRow]:
        # Another shard's line is dropped as soon as its customer field is cut out: before its
        # fingerprint, its checks and its row are made.
        return self._read(dataset, None, customer_field, keep)

    def _read(self, dataset: str, customer_key: str | None, customer_field: str,
              keep: Callable[[str | None], bool] | None) -> Iterator[RawRow]:
        opts = self.merged_options(dataset)
        self.check_options(dataset, opts, customer_key, customer_field)
        for path, relative in self.matching_files(dataset, opts):
            with self.open(dataset, path, relative) as handle:
                try:
                    yield from self.read_file(dataset, opts, handle, relative,
                                              customer_key, customer_field, keep)
                except OSError as exc:
                    raise SourceError(f"dataset {dataset!r}: reading {relative} failed: "
                                      f"{exc.strerror}", permanent=False) from None

    def check_options(self, dataset: str, opts: dict[str, Any], customer_key: str | None,
                      customer_field: str) -> None:
        """Refuse a bad configuration before any file is opened."""

    def read_file(self, dataset: str, opts: dict[str, Any], handle: BinaryIO, relative: str,
                  customer_key: str | None, customer_field: str,
                  keep: Callable[[str | None], bool] | None = None) -> Iterator[RawRow]:
        """The file's rows (of `customer_key` only, when given; of the customers `keep` accepts,
        when given, a row naming no one being kept if `keep(None)`)."""
        raise NotImplementedError


def encoded_key(customer_key: str | None, encoding: str) -> bytes | None:
    """The customer key as it appears in the file's bytes (None: no byte-level pre-check)."""
    if not customer_key:
        return None
    try:
        one, two = customer_key.encode(encoding), (customer_key * 2).encode(encoding)
    except UnicodeEncodeError:
        return None
    key = two[len(one):]  # without any signature (BOM) the codec puts first
    if not key or two != one + key:
        return None  # a stateful codec: no byte-level shortcut
    return key


class _DecodedLines:
    """Feeds the csv reader decoded lines while remembering, for the record being parsed,
    its first line number, its raw text and the decoding problems met.

    Once `prefilter` is set (the header read, a customer key given), a line that starts a
    record, lacks the key's bytes and cannot continue onto the next line (no quote or escape
    character) is skipped before the csv module ever parses it.
    """

    def __init__(self, raw_lines: Iterator[bytes | None], encoding: str, max_bytes: int,
                 openers: tuple[bytes, ...]) -> None:
        self._raw_lines = raw_lines
        self._encoding = encoding
        self._max_bytes = max_bytes
        self._openers = openers
        self.prefilter: bytes | None = None
        self.line_number = 0
        self.first_line = 1
        self.parts: list[str] = []
        self.errors: list[str] = []

    def __iter__(self) -> _DecodedLines:
        return self

    def __next__(self) -> str:
        while True:
            raw = next(self._raw_lines)
            self.line_number += 1
            if (self.prefilter is None or self.parts or raw is None
                    or self.prefilter in raw or any(o in raw for o in self._openers)):
                break
        if not self.parts:
            self.first_line = self.line_number
        if raw is None:
            self.errors.append(f"line longer than {self._max_bytes} bytes")
            text = "\n"
        else:
            text, error = decode(raw, self._encoding)
            if error is not None:
                self.errors.append(error)
            if self.line_number == 1 and text.startswith("\ufeff"):
                text = text[1:]
        self.parts.append(text)
        return text

    def take(self) -> tuple[int, str, list[str]]:
        """The current record's first line, text and decoding errors; starts the next one."""
        taken = (self.first_line, "".join(self.parts), self.errors)
        self.parts, self.errors = [], []
        return taken


class CSVAdapter(_FileAdapter):
    """Delimited text files, parsed with the csv module (quoted delimiters, quoted newlines)."""

    def check_options(self, dataset: str, opts: dict[str, Any], customer_key: str | None,
                      customer_field: str) -> None:
        self.encoding(dataset, opts)
        self.max_line_bytes(dataset, opts)
        self.dialect(dataset, opts)
        if not opts.get("header", True):
            names = opts.get("fieldnames")
            if (not isinstance(names, list) or not names
                    or not all(isinstance(n, str) and n for n in names)):
                raise SourceError(f"dataset {dataset!r}: without a header line, 'fieldnames' "
                                  "must list the column names", permanent=True)
            self.check_fieldnames(dataset, names, "fieldnames", customer_key, customer_field)

    @staticmethod
    def dialect(dataset: str, opts: dict[str, Any]) -> dict[str, Any]:
        quotechar = opts.get("quotechar", '"')
        params: dict[str, Any] = {
            "delimiter": opts.get("delimiter", ","),
            "quotechar": quotechar,
            "quoting": csv.QUOTE_MINIMAL if quotechar else csv.QUOTE_NONE,
            "escapechar": opts.get("escapechar"),
            "doublequote": opts.get("doublequote", True),
            "skipinitialspace": opts.get("skipinitialspace", False),
            "strict": True,
        }
        try:
            csv.reader([], **params)
        except (TypeError, csv.Error) as exc:
            raise SourceError(f"dataset {dataset!r}: invalid CSV options: {exc}",
                              permanent=True) from None
        return params

    @staticmethod
    def check_fieldnames(dataset: str, names: list[str], where: str, customer_key: str | None,
                         customer_field: str) -> None:
        if any(not name for name in names) or len(set(names)) != len(names):
            raise SourceError(f"dataset {dataset!r}: {where} has empty or repeated column "
                              "names", permanent=True)
        if customer_key is not None and customer_field not in names:
            raise SourceError(f"dataset {dataset!r}: customer field {customer_field!r} is not "
                              f"a column of {where}", permanent=True)

    def read_file(self, dataset: str, opts: dict[str, Any], handle: BinaryIO, relative: str,
                  customer_key: str | None, customer_field: str,
                  keep: Callable[[str | None], bool] | None = None) -> Iterator[RawRow]:
        encoding, newline = self.encoding(dataset, opts)
        max_bytes = self.max_line_bytes(dataset, opts)
        dialect = self.dialect(dataset, opts)
        openers = tuple(
            char.encode(encoding)
            for char in (dialect["quotechar"], dialect["escapechar"]) if char
        )
        lines = _DecodedLines(split_lines(handle, newline, max_bytes), encoding, max_bytes,
                              openers)
        reader = csv.reader(lines, **dialect)
        key_bytes = encoded_key(customer_key, encoding)
        fieldnames: list[str] | None = None
        if not opts.get("header", True):
            fieldnames = list(opts["fieldnames"])
            lines.prefilter = key_bytes
        key_index = -1
        if fieldnames is not None and customer_field in fieldnames:
            key_index = fieldnames.index(customer_field)

        while True:
            try:
                fields = next(reader)
                problem: str | None = None
            except StopIteration:
                return
            except csv.Error as exc:
                fields, problem = [], f"malformed CSV: {exc}"
            first_line, text, errors = lines.take()
            if keep is not None and fieldnames is not None and not keep(
                    _owner(fields, len(fieldnames), key_index)):
                continue  # another shard's row (or a blank line: skipped either way)
            locator = f"{relative}:{first_line} {content_hash(text.rstrip(chr(13) + chr(10)))}"
            problem = errors[0] if errors else (control_character_error(text) or problem)

            if not text.strip() and not errors:
                continue  # a blank line
            if fieldnames is None:
                # The header line.
                if problem is not None:
                    raise SourceError(f"dataset {dataset!r}: the header of {relative} is "
                                      f"unreadable ({problem})", permanent=True)
                fieldnames = [name.strip() for name in fields]
                where = f"the header of {relative}"
                self.check_fieldnames(dataset, fieldnames, where, customer_key, customer_field)
                if customer_field in fieldnames:
                    key_index = fieldnames.index(customer_field)
                lines.prefilter = key_bytes
                continue

            if customer_key is not None and customer_key not in text:
                continue  # the key does not even appear in the record
            if problem is None and len(fields) != len(fieldnames):
                problem = f"expected {len(fieldnames)} fields, got {len(fields)}"
            if problem is not None:
                yield RawRow({"line": evidence(text)}, locator, error=problem,
                             extra=_attribution(fieldnames, fields, customer_field))
                continue
            if customer_key is not None and fields[key_index].strip() != customer_key:
                continue
            yield RawRow(dict(zip(fieldnames, fields, strict=True)), locator)


class FixedWidthAdapter(_FileAdapter):
    """Fixed-width records: one per line, or fixed-length records without line ends."""

    def check_options(self, dataset: str, opts: dict[str, Any], customer_key: str | None,
                      customer_field: str) -> None:
        self.encoding(dataset, opts)
        self.max_line_bytes(dataset, opts)
        columns = self.columns(dataset, opts)
        length = self.record_length(dataset, opts)
        if length is not None and any(start + size > length for _, start, size in columns):
            raise SourceError(f"dataset {dataset!r}: a column ends beyond 'record_length'",
                              permanent=True)
        if customer_key is not None and customer_field not in {name for name, _, _ in columns}:
            raise SourceError(f"dataset {dataset!r}: customer field {customer_field!r} is not "
                              "one of the columns", permanent=True)
        self.skip_prefixes(dataset, opts)

    @staticmethod
    def columns(dataset: str, opts: dict[str, Any]) -> list[tuple[str, int, int]]:
        spec = opts.get("columns")
        problem = f"dataset {dataset!r}: 'columns' must list {{name, start, length}} objects"
        if not isinstance(spec, list) or not spec:
            raise SourceError(problem, permanent=True)
        columns: list[tuple[str, int, int]] = []
        for item in spec:
            if not isinstance(item, dict):
                raise SourceError(problem, permanent=True)
            name, start, size = item.get("name"), item.get("start"), item.get("length")
            if (not isinstance(name, str) or not name
                    or isinstance(start, bool) or not isinstance(start, int) or start < 0
                    or isinstance(size, bool) or not isinstance(size, int) or size < 1):
                raise SourceError(problem, permanent=True)
            columns.append((name, start, size))
        if len({name for name, _, _ in columns}) != len(columns):
            raise SourceError(f"dataset {dataset!r}: repeated column names", permanent=True)
        return columns

    @staticmethod
    def record_length(dataset: str, opts: dict[str, Any]) -> int | None:
        value = opts.get("record_length")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SourceError(f"dataset {dataset!r}: 'record_length' must be a positive "
                              "integer or null", permanent=True)
        return value

    @staticmethod
    def skip_prefixes(dataset: str, opts: dict[str, Any]) -> tuple[str, ...]:
        value = opts.get("skip_if_prefix") or []
        if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
            raise SourceError(f"dataset {dataset!r}: 'skip_if_prefix' must list strings",
                              permanent=True)
        return tuple(value)

    def read_file(self, dataset: str, opts: dict[str, Any], handle: BinaryIO, relative: str,
                  customer_key: str | None, customer_field: str,
                  keep: Callable[[str | None], bool] | None = None) -> Iterator[RawRow]:
        encoding, newline = self.encoding(dataset, opts)
        columns = self.columns(dataset, opts)
        length = self.record_length(dataset, opts)
        prefixes = self.skip_prefixes(dataset, opts)
        max_bytes = self.max_line_bytes(dataset, opts)
        carriage_return = "\r"
        last_start = max(start for _, start, _ in columns)

        records: Iterator[bytes | None]
        if length is None:
            records = split_lines(handle, newline, max_bytes)
        else:
            records = split_records(handle, length)

        key_bytes = encoded_key(customer_key, encoding)
        key_column = next(((start, size) for name, start, size in columns if name == customer_field), None)

        for number, raw in enumerate(records, start=1):
            if key_bytes is not None and (raw is None or key_bytes not in raw):
                continue  # cheap pre-check before decoding: not this customer's record
            where = f"{relative}:{number}" if length is None else f"{relative}#record {number}"
            if raw is None:
                if customer_key is None and (keep is None or keep(None)):
                    yield RawRow({"line": ""}, f"{where} {content_hash(b'')}",
                                 error=f"line longer than {max_bytes} bytes")
                continue
            text, problem = decode(raw, encoding)
            if length is None:
                text = text.rstrip("\n").rstrip(carriage_return)
            elif len(raw) < length:
                if not text.strip():
                    continue  # a stray line end after the last record
                problem = problem or f"expected {length} bytes, got {len(raw)}"
            if prefixes and text.startswith(prefixes):
                continue
            if not text.strip():
                continue
            if customer_key is not None and customer_key not in text:
                continue
            if keep is not None and not keep(None if key_column is None else _customer_value(
                    text[key_column[0]:key_column[0] + key_column[1]])):
                continue  # another shard's record
            locator = f"{where} {content_hash(raw)}"
            problem = problem or control_character_error(text)
            if problem is None and len(text) <= last_start:
                present = sum(1 for _, start, _ in columns if start < len(text))
                problem = f"expected {len(columns)} fields, got {present}"
            if problem is not None:
                names = [name for name, _, _ in columns]
                cut = [text[start:start + size] for _, start, size in columns]
                yield RawRow({"line": evidence(text)}, locator, error=problem,
                             extra=_attribution(names, cut, customer_field))
                continue
            values = {name: text[start:start + size].strip() for name, start, size in columns}
            if customer_key is not None and values[customer_field] != customer_key:
                continue
            yield RawRow(values, locator)
