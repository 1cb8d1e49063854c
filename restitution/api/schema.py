"""OpenAPI post-processing: the OAuth2 security scheme with one scope per dataset, each dataset's
record shape as a component taken from its JSON Schema, and what the views' decorators cannot
say: a live record and a deletion (tombstone) as two shapes, the NDJSON and CSV media types,
RFC 9457 problems on every error, and the response headers."""

from __future__ import annotations

from django.conf import settings

PROBLEM_MEDIA_TYPE = "application/problem+json"
NDJSON_MEDIA_TYPE = "application/x-ndjson"
ESPI_MEDIA_TYPE = "application/atom+xml"

#: Response headers, described once and copied into each response that sends them.
HEADERS = {
    "ETag": {"description": "Strong validator of the exact body; send it back in `If-None-Match` for a 304.",
             "schema": {"type": "string"}},
    "Link": {"description": 'The next page, RFC 8288: `<url>; rel="next"`. Absent on the last page.',
             "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before asking again (RFC 9110 §10.2.3).",
                    "schema": {"type": "integer", "minimum": 0}},
    "Content-Location": {"description": "The export job to poll.", "schema": {"type": "string", "format": "uri"}},
    "Location": {"description": "The first extraction run to poll.", "schema": {"type": "string", "format": "uri"}},
    "X-Progress": {"description": "How far the export is, as a percentage: `42%`.",
                   "schema": {"type": "string", "pattern": "^[0-9]{1,3}%$"}},
    "Repr-Digest": {"description": "SHA-256 of the archive (RFC 9530): `sha-256=:<base64>:`.",
                    "schema": {"type": "string"}},
    "X-Schema-Version": {"description": "The dataset schema's version (semantic versioning).",
                         "schema": {"type": "string"}},
    "Content-Disposition": {"description": "`attachment` with the file's name.", "schema": {"type": "string"}},
    "RateLimit-Policy": {"description": "The rate limits that counted this request "
                         "(draft-ietf-httpapi-ratelimit-headers), one item each: `\"customer\";q=10;w=1, "
                         "\"client\";q=50;w=1` (`q` requests per `w` seconds). Documents have limits of their "
                         "own (`customer_documents`, `client_documents`). Absent while the counters are "
                         "unreachable (the limits then fail open).", "schema": {"type": "string"}},
    "RateLimit": {"description": "What is left of each limit after this request: `\"customer\";r=7;t=1` "
                  "(`r` requests left, `t` seconds until one more is allowed again). At `r=0`, wait `t` seconds "
                  "before the next call under that limit.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "The Bearer challenge (RFC 6750 §3): `error`, and `scope` when a "
                         "narrower token lacks the dataset's scope.", "schema": {"type": "string"}},
}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem. Branch on `code` (stable); show `detail` (for people).",
    "properties": {
        "type": {"type": "string", "format": "uri-reference", "description": "The problem type's URI."},
        "title": {"type": "string", "description": "Short summary of the problem type."},
        "status": {"type": "integer", "minimum": 100, "maximum": 599, "description": "The HTTP status."},
        "detail": {"type": "string", "description": "This occurrence, for people."},
        "instance": {"type": "string", "format": "uri-reference"},
        "code": {"type": "string", "description": "Stable error code, e.g. `invalid_parameter`, `not_found`, "
                 "`rate_limited`, `insufficient_scope`, `export_in_progress`."},
        "parameter": {"type": "string", "description": "With `invalid_parameter`: the parameter at fault."},
    },
    "required": ["type", "title", "status", "detail", "code"],
    "additionalProperties": True,
}

#: A record's `date`: an RFC 3339 full-date (a dataset of days) or date-time in UTC to the second.
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?$"
DATE_TEXT = ("The record's own date (its dataset's `date_field`), in RFC 3339: for a dataset whose dates are "
             "days (`date_time_zone` set in `GET /datasets`: daily values, invoices' issue days) the local day "
             "itself, a full-date such as `2025-01-31`; otherwise the instant, a date-time in UTC to the second "
             "such as `2025-01-31T06:30:00Z`. Since API version 1.3.0 (before, days were printed as 00:00 UTC).")
RECORD_PROPERTIES = {
    "dataset": {"type": "string", "description": "The dataset's slug."},
    "key": {"type": "string", "description": "The record's natural key within its dataset (stable across updates)."},
    "seq": {"type": "integer", "minimum": 1, "description": "Change sequence: grows with every change."},
}
LIVE_RECORD = {
    "type": "object",
    "description": "A record as it stands now. It never carries `deleted`.",
    "properties": {
        **RECORD_PROPERTIES,
        "date": {"type": ["string", "null"], "pattern": DATE_PATTERN,
                 "description": DATE_TEXT + " Null when the record has none."},
        "extracted_at": {"type": "string", "format": "date-time", "description": "When it was read from the "
                         "holder's systems (RFC 3339, UTC)."},
        "data": {"type": "object", "description": "The record, in the shape of its dataset's JSON Schema."},
        "document_url": {"type": "string", "format": "uri-reference",
                         "description": "Only on a record that has a document (e.g. an invoice's PDF): where "
                         "to get it, `/api/v1/datasets/{slug}/documents/{sha256}`, relative to the API's origin. "
                         "Since API version 1.1.0."},
    },
    "required": ["dataset", "key", "seq", "date", "extracted_at", "data"],
}
TOMBSTONE = {
    "type": "object",
    "description": "A deletion (tombstone), only with `since` and in the change feed: drop the record with this "
    "`dataset` and `key` from a mirror. It carries the `date` the record last had, and no `extracted_at` nor "
    "`data`.",
    "properties": {**RECORD_PROPERTIES, "deleted": {"type": "boolean", "const": True},
                   "date": {"type": ["string", "null"], "pattern": DATE_PATTERN,
                            "description": "The date the record had when it was deleted, printed as a live "
                            "record's `date`; null when it had none. Since API version 1.2.0."}},
    "required": ["dataset", "key", "seq", "deleted"],
}
RECORD_ITEM = {
    "description": "An item of a page: a live record (`Record`), or a deletion (`Tombstone`, with `deleted: "
    "true`). Exactly one of the two matches: a tombstone has `deleted` and no `data`.",
    "oneOf": [{"$ref": "#/components/schemas/Record"}, {"$ref": "#/components/schemas/Tombstone"}],
}
RECORD_PAGE = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/RecordItem"}},
        "next": {"type": ["string", "null"], "format": "uri", "description": "The next page; null on the last."},
        "last_seq": {"type": "integer", "description": "The sequence of the page's last item (or the one asked "
                     "after, on an empty page): the `since` of the next incremental sync, once `next` is null."},
    },
    "required": ["items", "next", "last_seq"],
}
NDJSON_PAGE = {"type": "string", "description": "One `RecordItem` JSON object per line (UTF-8, each line ended by "
               "`\\n`; an empty page is an empty body). The next page is in the `Link` header."}
CSV_PAGE = {"type": "string", "description": "RFC 4180 CSV (UTF-8, CRLF): a header row `dataset,key,seq,date,"
            "deleted` then the dataset's fields in schema order (nested values as JSON text); one row per item, "
            "`deleted` is `true` or `false`. The next page is in the `Link` header."}
ESPI_FEED = {"type": "string", "description": "Green Button ESPI XML (NAESB REQ.21, ESPI 3.3), only for the "
             "energy datasets that offer it (else 406, or 400 with `format=espi`): one Atom feed of every record "
             "in the period, not paged (`cursor`, `since` and `page_size` are refused), streamed. LocalTimeParameters "
             "of the customers' time zone; per meter a UsagePoint, a MeterReading and its ReadingType (energy, "
             "uom 72 = Wh, powerOfTenMultiplier -3); IntervalBlocks of one local day (the load curve: one "
             "IntervalReading per reading present, a missing one is absent) or one local month (daily "
             "consumption: one IntervalReading per day). Times are seconds since 1970 (UTC)."}
EXTRACTION_ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "source": {"type": "string", "description": "The legacy source's slug."},
        "status": {"type": "string"}, "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "url": {"type": "string", "format": "uri", "description": "Poll it: GET /api/v1/extractions/{id}."},
    },
    "required": ["id", "source", "status", "progress", "finished_at", "url"],
}

GETTING_STARTED = """Your customers' own data, with their consent: datasets, records, changes, documents, archives.

## Getting started

1. **Register a client**: with the holder's operator, or dynamically (`POST /o/register/`, RFC 7591);
   the operator approves it and allows it some datasets.
2. **Get a token**: send the customer to `/o/authorize/` (authorization code with PKCE S256, one
   scope per dataset, `dataset:<slug>`); they log in, choose datasets and a period, and approve. Trade
   the code at `/o/token/`. The endpoints are in `/.well-known/oauth-authorization-server` (RFC 8414).
3. **Read**: `GET /api/v1/datasets` lists what the token may read; page each dataset's
   `/records` (follow `next`), keep `last_seq`, and come back with `since=<last_seq>` for the changes
   and deletions only.

## Authentication

Every call but the signed archive link sends `Authorization: Bearer <access token>` (RFC 6750).
Public clients (no secret) authenticate to the token endpoint with their `client_id` in the body and
PKCE; confidential clients with HTTP Basic or `client_secret_post`. Tokens are short-lived; refresh
them with the refresh token (it rotates). In this page, **Authorize** takes a token you already hold
(`bearer`). The PIMS developer guide (`docs/pims-guide.md`) has working calls with requests-oauthlib
and Authlib.

## Errors

Every error is an RFC 9457 problem (`application/problem+json`) with a stable `code`.
"""

TAGS = [
    {"name": "me", "description": "Who the token speaks for, and under which consent."},
    {"name": "datasets", "description": "The granted datasets: their JSON Schemas, records (JSON, NDJSON, CSV, "
     "Green Button ESPI XML for energy; "
     "full reads and incremental syncs with `since`) and documents (e.g. invoice PDFs)."},
    {"name": "changes", "description": "One feed of creations, updates and deletions across the granted datasets."},
    {"name": "exports", "description": "Archives of the consented data (ZIP), built in the background and "
     "downloaded through a signed link."},
    {"name": "extractions", "description": "Asking the holder's systems for fresh data."},
]

#: Headers sent on a success, by (path, method, status): name → always sent.
SUCCESS_HEADERS = {
    ("/api/v1/datasets/{slug}/records", "get", "200"): {"ETag": False, "Link": False},
    ("/api/v1/changes", "get", "200"): {"ETag": False, "Link": False},
    ("/api/v1/datasets/{slug}/schema", "get", "200"): {"X-Schema-Version": True},
    ("/api/v1/datasets/{slug}/documents/{sha256}", "get", "200"): {"Content-Disposition": True},
    ("/api/v1/exports", "post", "202"): {"Content-Location": True},
    ("/api/v1/exports/{export_id}", "get", "202"): {"X-Progress": True, "Retry-After": True},
    ("/api/v1/exports/{export_id}/archive", "get", "200"): {"Repr-Digest": True, "Content-Disposition": True},
    ("/api/v1/extractions", "post", "202"): {"Location": False},
}
#: The signed archive link: the link is the credential, no OAuth token.
UNAUTHENTICATED = {("/api/v1/exports/{export_id}/archive", "get")}
ERROR_DESCRIPTIONS = {
    "400": "A bad parameter or body (`invalid_parameter`, `invalid_body`).",
    "401": "No token, or an invalid, expired or revoked one (`WWW-Authenticate: Bearer`).",
    "403": "The token lacks the dataset's scope (`insufficient_scope`, a narrowed token).",
    "404": "Not found, or not granted to this token (never told apart).",
    "406": "None of the `Accept` media types can be served.",
    "410": "Gone (an expired archive or link, or an ended consent).",
    "429": "Too many requests: wait `Retry-After` seconds.",
    "503": "The gateway's database is briefly unreachable: retry after `Retry-After` seconds.",
}


def _problem_response(description: str, *, headers: dict | None = None) -> dict:
    response = {"description": description,
                "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if headers:
        response["headers"] = headers
    return response


def _header_ref(name: str, required: bool) -> dict:
    # In place: a Reference Object could not say whether the header is always sent.
    return {**HEADERS[name], "required": required}


def add_security_and_datasets(result, generator, request, public):
    from ..models import Dataset

    datasets = list(Dataset.objects.filter(is_published=True).order_by("slug"))
    result["info"]["contact"] = {"name": settings.GATEWAY_HOLDER_NAME, "email": settings.GATEWAY_HOLDER_CONTACT}
    result["info"]["license"] = {"name": settings.GATEWAY_API_LICENSE_NAME,
                                 "identifier": settings.GATEWAY_API_LICENSE}
    result["servers"] = [{"url": settings.GATEWAY_ISSUER, "description": settings.GATEWAY_HOLDER_NAME}]
    result["tags"] = TAGS
    result["info"]["description"] = GETTING_STARTED
    components = result.setdefault("components", {})
    schemes = components.setdefault("securitySchemes", {})
    schemes.pop("oauth2", None)
    schemes["oauth2"] = {
        "type": "oauth2",
        "description": "Authorization code with PKCE (S256). See /.well-known/oauth-authorization-server.",
        "flows": {"authorizationCode": {
            "authorizationUrl": "/o/authorize/", "tokenUrl": "/o/token/", "refreshUrl": "/o/token/",
            "scopes": {d.scope: f"Read {d.title_en.lower()}" for d in datasets},
        }},
    }
    schemes["bearer"] = {"type": "http", "scheme": "bearer",
                         "description": "An access token you already hold, pasted as is (RFC 6750)."}
    slugs = [d.slug for d in datasets]
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            if not (isinstance(operation, dict) and "responses" in operation):
                continue
            authenticated = (path, method) not in UNAUTHENTICATED
            operation["security"] = [{"oauth2": []}, {"bearer": []}] if authenticated else []
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") == "slug" and slugs:
                    parameter["schema"] = {"type": "string", "enum": slugs}
            _document_responses(path, method, operation, authenticated=authenticated)

    schemas = components.setdefault("schemas", {})
    refs = []
    for dataset in datasets:
        shape = {k: v for k, v in dataset.schema.items() if k not in {"$schema", "$id"}}
        name = "".join(part.capitalize() for part in dataset.slug.split("-")) + "Data"
        schemas[name] = {**shape, "description": dataset.description_en,
                         "x-natural-key": list(dataset.natural_key)}
        refs.append({"$ref": f"#/components/schemas/{name}"})
    live = {**LIVE_RECORD, "properties": dict(LIVE_RECORD["properties"])}
    # The key format, per dataset: the natural key's field values as text, joined by `|`.
    formats = "; ".join(f"`{d.slug}`: `{'|'.join(d.natural_key)}`" for d in datasets)
    key = {**RECORD_PROPERTIES["key"], "description": "The record's natural key within its dataset, stable across "
           "updates: the values of the dataset's key fields (`x-natural-key` of its `<Dataset>Data` schema) as "
           f"text, joined by `|`. {formats}."}
    live["properties"]["key"] = key
    if refs:
        # A live record's data is exactly one dataset's shape.
        live["properties"]["data"] = {"oneOf": refs,
                                      "description": "The record, in the shape of its dataset's JSON Schema."}
    tombstone = {**TOMBSTONE, "properties": {**TOMBSTONE["properties"], "key": key}}
    schemas.update({"Record": live, "Tombstone": tombstone, "RecordItem": RECORD_ITEM, "RecordPage": RECORD_PAGE,
                    "Problem": PROBLEM_SCHEMA, "ExtractionItem": EXTRACTION_ITEM,
                    "ExtractionList": {"type": "object", "required": ["items"], "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/ExtractionItem"}}}}})
    schemas.pop("Refresh", None)
    return result


def _document_responses(path: str, method: str, operation: dict, *, authenticated: bool) -> None:
    responses = operation["responses"]
    if authenticated:
        for code in ("400", "401", "403", "404", "429", "503"):
            responses.setdefault(code, {})
    for code, response in list(responses.items()):
        if code.startswith(("4", "5")):
            headers = {}
            if code in ("429", "503"):
                headers["Retry-After"] = _header_ref("Retry-After", code == "429")
            if code == "429" and authenticated:
                headers.update({name: _header_ref(name, False) for name in ("RateLimit-Policy", "RateLimit")})
            if code in ("401", "403"):
                headers["WWW-Authenticate"] = _header_ref("WWW-Authenticate", code == "401")
            description = response.get("description", "")
            if not description or description.startswith("An RFC 9457 problem"):
                description = ERROR_DESCRIPTIONS.get(code, "An RFC 9457 problem.")
            responses[code] = _problem_response(description, headers=headers)
            continue
        content = response.get("content", {})
        if "application/json" in content and content["application/json"]["schema"].get("$ref", "").endswith(
                "/RecordPage"):
            response["content"] = {"application/json": content["application/json"],
                                   NDJSON_MEDIA_TYPE: {"schema": NDJSON_PAGE}, "text/csv": {"schema": CSV_PAGE}}
            if path == "/api/v1/datasets/{slug}/records":
                response["content"][ESPI_MEDIA_TYPE] = {"schema": ESPI_FEED}
        for name, required in SUCCESS_HEADERS.get((path, method, code), {}).items():
            response.setdefault("headers", {})[name] = _header_ref(name, required)
        if authenticated:
            for name in ("RateLimit-Policy", "RateLimit"):
                response.setdefault("headers", {})[name] = _header_ref(name, False)
        if not response.get("description"):
            response["description"] = {"200": "OK.", "202": "Accepted.", "304": "Not modified."}.get(code, "Done.")
    if (path, method) == ("/api/v1/extractions", "post"):
        responses["202"] = {
            "description": "The runs asked for, one per legacy source of the customer (a run already queued "
            "or running is given as is); an empty list when the customer has no source.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExtractionList"}}},
            "headers": {"Location": _header_ref("Location", False)}}


def schema_view():
    """The schema endpoint, downloaded under a plain ASCII file name (the title holds a dash
    that would otherwise turn the header into an RFC 2047 encoded word)."""
    from drf_spectacular.views import SpectacularAPIView

    class SchemaView(SpectacularAPIView):
        def _get_filename(self, request, version):
            suffix = self.perform_content_negotiation(request, force=True)[0].format
            return f"restitution-gateway-openapi.{suffix}"

    return SchemaView.as_view()
