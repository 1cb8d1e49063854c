"""API benchmark: paging out one customer's year-plus of 30-minute readings, compared in the
same run with PostgreSQL `COPY … TO STDOUT` of the same rows and with a naive DRF endpoint
(ModelSerializer + page numbers).

    make bench-api

Reports ratios (goals: ours ÷ COPY ≤ 2; naive ÷ ours ≥ 5), and what keeping each record's
API item printed costs the writes and the store. Uses its own database.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from datetime import timedelta

DATABASE = "restitution_bench_api"


def _setup() -> None:
    from tests.bench.extraction import _setup_django

    os.environ["API_RATE_PER_CUSTOMER"] = "1000000/s"
    os.environ["API_RATE_PER_CLIENT"] = "1000000/s"
    _setup_django(DATABASE)


def _naive_urls():
    """A plain DRF endpoint as one would write it first: ModelSerializer + page numbers."""
    from django.urls import include, path
    from oauth2_provider.contrib.rest_framework import OAuth2Authentication
    from rest_framework import generics, pagination, serializers

    from restitution.models import Record

    class NaiveSerializer(serializers.ModelSerializer):
        class Meta:
            model = Record
            fields = ["key", "seq", "record_at", "extracted_at", "deleted", "data"]

    class Pages(pagination.PageNumberPagination):
        page_size = 1000

    class NaiveList(generics.ListAPIView):
        authentication_classes = [OAuth2Authentication]
        serializer_class = NaiveSerializer
        pagination_class = Pages

        def get_queryset(self):
            return Record.objects.filter(customer__user=self.request.user, dataset__slug=self.kwargs["slug"],
                                         deleted=False).order_by("record_at")

    return [path("naive/<slug:slug>", NaiveList.as_view()), path("", include("config.urls"))]


def _paired(baseline, candidate, pairs: int = 11) -> tuple[float, float, list[float]]:
    """Median times of both, and every candidate ÷ baseline ratio, the two run one after the
    other in each pair: a machine that slows down for a while slows both sides of a pair."""
    base_runs, cand_runs = [], []
    for _ in range(pairs):
        for fn, runs in ((baseline, base_runs), (candidate, cand_runs)):
            started = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - started)
    ratios = sorted(c / b for b, c in zip(base_runs, cand_runs, strict=True))
    return statistics.median(base_runs), statistics.median(cand_runs), ratios


def _time(fn, repeat: int = 7) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def _profile(sync, http, auth) -> None:
    """--profile: the SQL statements of one record page, then where the time of one sync goes."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        http.get("/api/v1/datasets/energy-load-curve/records?page_size=1000", **auth)
    print(f"{len(queries)} SQL statements for one record page:")
    for query in queries:
        print("   ", query["sql"][:160])
    profiler = cProfile.Profile()
    profiler.runcall(sync)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def _write_readings(customer_id: int, dataset_id: int) -> int:
    """396 days of one customer's half-hour readings as day blocks (one record per local day, 46
    or 50 readings on the clock-change days), written through the store as an extraction does.
    Returns the number of records."""
    from datetime import date

    from demo.energy import day_half_hours, load_curve_day
    from restitution import store

    writer = store.SnapshotWriter(dataset_id=dataset_id, source_id=None, chunk_size=500)
    days = 396
    for offset in range(days):
        day = date(2024, 10, 1) + timedelta(days=offset)
        half_hours = day_half_hours(day)
        watts = [200 + round(1000 * (n % 48) / 30) for n in range(len(half_hours))]
        data = load_curve_day("12345678901234", day, half_hours, watts)
        writer.add(customer_id=customer_id, key=f"12345678901234|{data['day']}", data=data,
                   record_at=store.parse_record_date(data["start"]), locator="bench")
    writer.finish()
    return days


def _write_cost(dataset_id: int, pairs: int = 3) -> tuple[float, float, float, float]:
    """What keeping items printed costs: the same readings written for another customer with the
    item trigger disabled and enabled, in pairs; and the store's bytes per record, the item's share."""
    from django.db import connection

    from restitution.models import Customer, Record

    runs: dict[bool, list[float]] = {False: [], True: []}
    for n in range(pairs):
        for printed in (False, True):
            other = Customer.objects.create(reference=f"C-WRITE-{n}-{printed}")
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE restitution_record {'ENABLE' if printed else 'DISABLE'} "
                               "TRIGGER restitution_record_item, ALTER COLUMN item "
                               f"{'SET' if printed else 'DROP'} NOT NULL")
            started = time.perf_counter()
            _write_readings(other.pk, dataset_id)
            runs[printed].append(time.perf_counter() - started)
            Record.objects.filter(customer=other).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM FULL restitution_record")
        cursor.execute("SELECT pg_total_relation_size('restitution_record') / count(*)::float, "
                       "avg(pg_column_size(item)) FROM restitution_record")
        per_record, item = cursor.fetchone()
    return statistics.median(runs[False]), statistics.median(runs[True]), per_record, float(item)


def _prepare() -> dict:
    """Alice's 396 days of half-hour readings (day blocks), a consent to one client and its token."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from restitution import consent
    from restitution.catalogue import sync_catalogue
    from restitution.models import Customer, Dataset, PimsClient
    from tests.api.test_isolation_property import issue_token

    sync_catalogue()
    curve = Dataset.objects.get(slug="energy-load-curve")
    user = get_user_model().objects.create_user("alice", password="x" * 20)
    alice = Customer.objects.create(user=user, reference="C-ALICE")
    client = PimsClient.objects.create(name="Bench", client_id="bench", client_type="public",
                                       authorization_grant_type="authorization-code",
                                       redirect_uris="https://bench.example/cb", algorithm="", approval="approved")
    client.allowed_datasets.set([curve])
    readings = _write_readings(alice.pk, curve.pk)
    grant = consent.create_grant(customer=alice, client=client, datasets=[curve], duration="12m")
    token = issue_token(grant)
    return {"http": Client(), "auth": {"HTTP_AUTHORIZATION": f"Bearer {token}"}, "customer": alice,
            "dataset": curve, "readings": readings}


def main() -> int:
    _setup()
    try:
        from django.db import connection
        from django.test.utils import override_settings

        bench = _prepare()
        http, auth, alice, curve, readings = (bench[k] for k in ("http", "auth", "customer", "dataset", "readings"))

        from restitution.portability import MAX_PAGE_SIZE

        def copy_out():
            """The baseline: the same rows and columns as the API serves, in one COPY."""
            buffer = io.BytesIO()
            with connection.cursor() as cursor, cursor.copy(
                "COPY (SELECT key, seq, record_at, extracted_at, data FROM restitution_record WHERE customer_id = "
                f"{alice.pk} AND dataset_id = {curve.pk} AND NOT deleted ORDER BY seq) TO STDOUT"
            ) as copy:
                for block in copy:
                    buffer.write(block)
            return buffer.tell()

        def sync(page_size: int, fmt: str = "json", parse: bool = False):
            """Page out every record following the Link header, as a client mirroring the data
            would; with `parse`, each JSON page is decoded too (as the naive client must)."""
            def run():
                url, pages = f"/api/v1/datasets/energy-load-curve/records?page_size={page_size}&format={fmt}", 0
                while url:
                    response = http.get(url, **auth)
                    assert response.status_code == 200, response.status_code
                    if parse:
                        response.json()
                    pages += 1
                    link = response.get("Link")
                    url = link[1:link.index(">")] if link else None
                return pages
            return run

        def check(page_size: int) -> None:
            """Outside the timings: the pages hold every record once, in order."""
            url, seqs = f"/api/v1/datasets/energy-load-curve/records?page_size={page_size}", []
            while url:
                body = http.get(url, **auth).json()
                seqs += [item["seq"] for item in body["items"]]
                url = body["next"]
            assert len(seqs) == readings == len(set(seqs)) and seqs == sorted(seqs), (len(seqs), readings)

        def naive():
            page, count = 1, 0
            while True:
                body = http.get(f"/naive/energy-load-curve?page={page}", **auth).json()
                count += len(body["results"])
                if not body["next"]:
                    break
                page += 1
            assert count == readings, count

        with override_settings(ROOT_URLCONF=type("U", (), {"urlpatterns": _naive_urls()})):
            naive_s = _time(naive)
        if "--profile" in sys.argv:
            _profile(sync(1000), http, auth)
        check(1000)
        check(MAX_PAGE_SIZE)
        write_plain_s, write_printed_s, bytes_per_record, item_bytes = _write_cost(curve.pk)
        copy_s, json_max_s, json_ratios = _paired(copy_out, sync(MAX_PAGE_SIZE))
        _, ndjson_max_s, ndjson_ratios = _paired(copy_out, sync(MAX_PAGE_SIZE, "ndjson"))
        json_1000_s = _time(sync(1000))
        parsed_1000_s = _time(sync(1000, parse=True))
        report = {
            "records": readings,
            "max_page_size": MAX_PAGE_SIZE,
            "copy_to_stdout_s": round(copy_s, 3),
            "api_json_max_pages_s": round(json_max_s, 3),
            "api_ndjson_max_pages_s": round(ndjson_max_s, 3),
            "api_json_1000_s": round(json_1000_s, 3),
            "api_json_1000_parsed_s": round(parsed_1000_s, 3),
            "naive_drf_1000_parsed_s": round(naive_s, 3),
            # Goal ≤ 2: the median of the paired ratios, with the lowest and highest pair.
            "ratio_api_json_max_vs_copy": round(statistics.median(json_ratios), 2),
            "ratio_api_json_max_vs_copy_range": [round(json_ratios[0], 2), round(json_ratios[-1], 2)],
            "ratio_api_ndjson_max_vs_copy": round(statistics.median(ndjson_ratios), 2),
            "ratio_api_ndjson_max_vs_copy_range": [round(ndjson_ratios[0], 2), round(ndjson_ratios[-1], 2)],
            "ratio_api_json_1000_vs_copy": round(json_1000_s / copy_s, 2),
            # Goal ≥ 5: both clients decode every page, both at 1 000 records a page.
            "ratio_naive_vs_api_json_1000": round(naive_s / parsed_1000_s, 2),
            # The price of the pages above: items printed once, on write (trigger), and kept.
            "write_readings_item_trigger_off_s": round(write_plain_s, 3),
            "write_readings_item_trigger_on_s": round(write_printed_s, 3),
            "ratio_write_printed_vs_plain": round(write_printed_s / write_plain_s, 2),
            "store_bytes_per_record": round(bytes_per_record),
            "item_bytes_per_record": round(item_bytes),
        }
        width = max(map(len, report))
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        return 0
    finally:
        from tests.bench.extraction import _drop

        _drop(DATABASE)


if __name__ == "__main__":
    sys.exit(main())
