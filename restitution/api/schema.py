"""OpenAPI post-processing: the OAuth2 security scheme with one scope per dataset, and each
dataset's record shape as a component taken from its JSON Schema."""

from __future__ import annotations


def add_security_and_datasets(result, generator, request, public):
    from ..models import Dataset

    datasets = list(Dataset.objects.filter(is_published=True).order_by("slug"))
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
    slugs = [d.slug for d in datasets]
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["security"] = [{"oauth2": []}]
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "path" and parameter.get("name") == "slug" and slugs:
                        # The published datasets (a token reads only those of its consent).
                        parameter["schema"] = {"type": "string", "enum": slugs}
    schemas = components.setdefault("schemas", {})
    refs = []
    for dataset in datasets:
        shape = {k: v for k, v in dataset.schema.items() if k not in {"$schema", "$id"}}
        name = "".join(part.capitalize() for part in dataset.slug.split("-")) + "Data"
        schemas[name] = {**shape, "description": dataset.description_en}
        refs.append({"$ref": f"#/components/schemas/{name}"})
    record = schemas.get("Record", {}).get("properties", {})
    if refs and "data" in record:
        # A record's data is exactly one dataset's shape (absent on deletions).
        record["data"] = {"oneOf": refs, "description": "The record, in the shape of its dataset's JSON Schema."}
    return result
