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
        writer.writerow(["dataset", "key", "seq", "date", "deleted", *fields])
        for item in items:
            values = item.get("data") or {}
            row = [item.get("dataset"), item.get("key"), item.get("seq"), item.get("date") or "",
                   "true" if item.get("deleted") else "false"]
            for name in fields:
                value = values.get(name)
                row.append("" if value is None else json.dumps(value, ensure_ascii=False)
                           if isinstance(value, dict | list) else value)
            writer.writerow(row)
        return buffer.getvalue().encode()
