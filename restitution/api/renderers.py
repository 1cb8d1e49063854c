"""NDJSON and CSV renderings of record pages, beside JSON (chosen by Accept or ?format=), and the
Green Button ESPI media type of the energy datasets (the feed itself is streamed by the view)."""

from __future__ import annotations

import csv
import io
import json

from rest_framework.renderers import BaseRenderer

from ..portability import csv_header, csv_row


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
        if items is None:  # an error: its problem document, as JSON (its Content-Type says so)
            return json.dumps(data, ensure_ascii=False, default=str).encode()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
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


class ESPIRenderer(BaseRenderer):
    """Green Button ESPI XML (`Accept: application/atom+xml` or `format=espi`). The view streams
    the feed itself (restitution/greenbutton.py); only an error reaches this renderer, written as
    its JSON problem document (its Content-Type says so)."""

    media_type = "application/atom+xml"
    format = "espi"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data, ensure_ascii=False, default=str).encode()


class DocumentRenderer(BaseRenderer):
    """Lets a document request name the document's own type (`Accept: application/pdf`): the file
    itself is streamed as is (never rendered); an error is its JSON problem document."""

    media_type = "*/*"
    format = "document"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data, ensure_ascii=False, default=str).encode()
