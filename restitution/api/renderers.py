"""NDJSON and CSV renderings of record pages, beside JSON (chosen by Accept or ?format=)."""

from __future__ import annotations

import csv
import io
import json

from rest_framework.renderers import BaseRenderer


def _items(data):
    if isinstance(data, dict) and "items" in data:
        return data["items"]
    return None


class NDJSONRenderer(BaseRenderer):
    """One JSON object per line (the page's items); the next cursor travels in the Link header."""

    media_type = "application/x-ndjson"
    format = "ndjson"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        items = _items(data)
        if items is None:  # an error or a non-list answer: one line of it
            return (json.dumps(data, ensure_ascii=False, default=str) + "\n").encode()
        return "".join(json.dumps(item, ensure_ascii=False, default=str) + "\n" for item in items).encode()


class CSVRenderer(BaseRenderer):
    """A flat table: key, seq, date, deleted, then the dataset's fields (nested values as JSON)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        items = _items(data)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if items is None:
            writer.writerow(["error"])
            writer.writerow([json.dumps(data, ensure_ascii=False, default=str)])
            return buffer.getvalue().encode()
        fields = list((renderer_context or {}).get("csv_fields") or [])
        for item in items:
            for name in (item.get("data") or {}):
                if name not in fields:
                    fields.append(name)
        writer.writerow(csv_header(fields))
        for item in items:
            writer.writerow(csv_row(item.get("dataset"), item.get("key"), item.get("seq"), item.get("date"),
                                    bool(item.get("deleted")), item.get("data") or {}, fields))
        return buffer.getvalue().encode()


def csv_header(fields: list[str]) -> list[str]:
    return ["dataset", "key", "seq", "date", "deleted", *fields]


def csv_row(dataset: str | None, key: str | None, seq: int | None, date: str | None, deleted: bool,
            values: dict, fields: list[str]) -> list:
    """One record as a CSV row (nested values as JSON), the columns of csv_header()."""
    row = [dataset, key, seq, date or "", "true" if deleted else "false"]
    for name in fields:
        value = values.get(name)
        row.append("" if value is None else json.dumps(value, ensure_ascii=False)
                   if isinstance(value, dict | list) else value)
    return row
