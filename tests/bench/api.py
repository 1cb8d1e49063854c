"""API benchmark: paging out one customer's year-plus of 30-minute readings, compared in the
same run with PostgreSQL `COPY … TO STDOUT` of the same rows and with a naive DRF endpoint
(ModelSerializer + page numbers).

    make bench-api

Reports ratios (goals: ours ÷ COPY ≤ 2; naive ÷ ours ≥ 5). Uses its own database.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

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


def _time(fn, repeat: int = 3) -> float:
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


def main() -> int:
    _setup()
    try:
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import override_settings

        from restitution import consent, store
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
        start = datetime(2024, 10, 1, tzinfo=UTC)
        writer = store.SnapshotWriter(dataset_id=curve.pk, source_id=None, chunk_size=5000)
        readings = 396 * 48
        for n in range(readings):
            moment = start + timedelta(minutes=30 * n)
            data = {"delivery_point": "12345678901234", "start": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end": (moment + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "average_power_kw": round(0.2 + (n % 48) / 30, 3)}
            writer.add(customer_id=alice.pk, key=f"12345678901234|{data['start']}", data=data, record_at=moment,
                       locator="bench")
        writer.finish()
        grant = consent.create_grant(customer=alice, client=client, datasets=[curve], duration="12m")
        token = issue_token(grant)
        auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        http = Client()

        def copy_out():
            buffer = io.BytesIO()
            with connection.cursor() as cursor, cursor.copy(
                "COPY (SELECT key, seq, record_at, data FROM restitution_record WHERE customer_id = "
                f"{alice.pk} AND dataset_id = {curve.pk} AND NOT deleted ORDER BY seq) TO STDOUT"
            ) as copy:
                for block in copy:
                    buffer.write(block)
            return buffer.tell()

        def ours():
            url, count = "/api/v1/datasets/energy-load-curve/records?page_size=1000", 0
            while url:
                body = http.get(url, **auth).json()
                count += len(body["items"])
                url = body["next"]
            assert count == readings, count

        def ours_ndjson():
            url, count = "/api/v1/datasets/energy-load-curve/records?page_size=1000&format=ndjson", 0
            after = None
            while True:
                response = http.get(url, **auth)
                lines = response.content.splitlines()
                count += len(lines)
                link = response.get("Link")
                if not link:
                    break
                url = link[1:link.index(">")]
                after = url
            assert count == readings, (count, after)

        with override_settings(ROOT_URLCONF=type("U", (), {"urlpatterns": _naive_urls()})):
            def naive():
                page, count = 1, 0
                while True:
                    body = http.get(f"/naive/energy-load-curve?page={page}", **auth).json()
                    count += len(body["results"])
                    if not body["next"]:
                        break
                    page += 1
                assert count == readings, count

            naive_s = _time(naive)
        if "--profile" in sys.argv:
            _profile(ours, http, auth)
        copy_s = _time(copy_out)
        ours_s = _time(ours)
        ndjson_s = _time(ours_ndjson)
        report = {
            "records": readings,
            "copy_to_stdout_s": round(copy_s, 3),
            "api_json_s": round(ours_s, 3),
            "api_ndjson_s": round(ndjson_s, 3),
            "naive_drf_s": round(naive_s, 3),
            "ratio_api_json_vs_copy": round(ours_s / copy_s, 2),
            "ratio_api_ndjson_vs_copy": round(ndjson_s / copy_s, 2),
            "ratio_naive_vs_api_json": round(naive_s / ours_s, 2),
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
