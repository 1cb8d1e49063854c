"""An archive of every demo customer holds exactly their ground truth, and its checksums verify."""

from __future__ import annotations

import hashlib
import json

import pytest

from demo.install import install_demo
from restitution import exports, portability
from restitution.catalogue import BY_SLUG, has_day_blocks
from restitution.models import Customer, ExportJob
from tests.conftest import load_ground_truth
from tests.exports.archive_reader import csv_rows, ndjson_items, open_checked
from tests.extraction.test_demo_extraction import extract_all

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_demo_customer_downloads_exactly_their_ground_truth(demo_dir, demo_env, flush_gate, settings,
                                                                  tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    install_demo(demo_dir, with_users=False)
    extract_all()
    truth = load_ground_truth(demo_dir)
    customers = list(Customer.objects.filter(identities__isnull=False).distinct().order_by("reference"))
    assert len(customers) >= 4
    pdfs = records = 0
    for customer in customers:
        job = exports.request_export(customer=customer, datasets=exports.customer_datasets(customer=customer),
                                     window=portability.Window(None, None), language="fr")
        assert exports.execute_export(job_id=job.pk) == ExportJob.Status.SUCCEEDED
        job.refresh_from_db()
        with exports.open_archive(job=job) as handle:
            content = handle.read()
        assert hashlib.sha256(content).hexdigest() == job.sha256 and len(content) == job.size
        archive, manifest = open_checked(content)

        expected = {k: v for k, v in truth.items() if k[0] == customer.reference}
        got = {}
        for dataset in manifest["datasets"]:
            items = ndjson_items(archive, dataset["slug"])
            assert len(items) == dataset["records"]
            got.update({(customer.reference, item["dataset"], item["key"]): item["data"] for item in items})
            rows = csv_rows(archive, dataset["slug"])
            schema = json.loads(archive.read(f"{dataset['slug']}/schema.json"))
            if has_day_blocks(schema):  # one row per interval of each day, in the blocks' order
                expected_rows = [(i["key"], i["seq"], start) for i in items for start in
                                 sorted([r["start"] for r in i["data"]["readings"]] + i["data"]["missing"])]
                assert [(r["key"], int(r["seq"]), r["reading_start"]) for r in rows] == expected_rows
                assert sum(r["missing"] == "true" for r in rows) == sum(i["data"]["missing_count"] for i in items)
            else:
                assert [(r["key"], int(r["seq"])) for r in rows] == [(i["key"], i["seq"]) for i in items]
                assert list(rows[0])[5:] == list(BY_SLUG[dataset["slug"]].properties)  # declared order
            assert set(schema["properties"]) == set(BY_SLUG[dataset["slug"]].properties)
        assert got == expected, customer.reference
        assert manifest["record_count"] == len(expected)

        # Every invoice's PDF is in the archive, byte for byte the one its record names.
        documents = {f["path"]: f for f in manifest["files"] if f["kind"] == "document"}
        named = [(key, data["document"]) for (_, slug, key), data in expected.items()
                 if slug == "telco-invoices" and data.get("document")]
        assert len(documents) == len(named)
        pdfs, records = pdfs + len(named), records + len(expected)
        for key, document in named:
            path = f"documents/telco-invoices/{key}/{document['filename']}"
            assert hashlib.sha256(archive.read(path)).hexdigest() == document["sha256"]

        readme = archive.read("README.txt").decode("utf-8")
        assert readme.index("Vos données") < readme.index("Your data")  # French first, as asked
        for dataset in manifest["datasets"]:
            assert f"{dataset['slug']}/" in readme
    assert pdfs > 0 and records == len(truth)
    print(f"{len(customers)} archives, {records} records, {pdfs} PDFs")
