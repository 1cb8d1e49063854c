"""The extraction hook: a run that changed a customer's data publishes RUN_CHANGED_DATA, whose
subscriber queues a delivery to that customer's destinations only; a run that changed nothing
publishes nothing and queues nothing."""

from __future__ import annotations

from connectors_out.models import Delivery, Destination
from restitution import extraction, store
from restitution.models import Customer, Source
from tests.conftest import deliver_events
from tests.connectors_out.conftest import connect


def _settled(destination: Destination) -> None:
    """As if everything so far had been delivered."""
    Delivery.objects.filter(destination=destination).delete()
    Destination.objects.filter(pk=destination.pk).update(delivered_seq=store.current_seq())


def test_a_batch_run_queues_deliveries_only_for_the_customers_whose_data_changed(demo_customer):
    other = Customer.objects.get(reference="C00003")
    settings_ = ({"server": "https://dav.example", "username": "u"}, {"app_password": "p"})
    mine = connect(demo_customer, "webdav", *settings_)
    theirs = connect(demo_customer, "webdav", *settings_)
    Destination.objects.filter(pk=theirs.pk).update(customer=other)
    batch = extraction.request_extraction(source=Source.objects.get(slug="insurer-policies"))
    extraction.run_synchronously(run=batch)  # C00003's records appear: their destination has news
    assert deliver_events() == 2  # the run's RUN_CHANGED_DATA event, to connectors_out's 2 subscribers
    for destination in (mine, theirs):
        _settled(destination)

    unchanged = extraction.request_extraction(source=Source.objects.get(slug="insurer-policies"))
    assert extraction.run_synchronously(run=unchanged).updated == 0
    assert deliver_events() == 0  # a run that changed nothing publishes nothing
    assert not Delivery.objects.exists()

    demo_customer.change_one_contract_and_drop_one_claim()  # C00001's data only
    changed = extraction.request_extraction(source=Source.objects.get(slug="insurer-policies"))
    assert extraction.run_synchronously(run=changed).updated == 1
    assert deliver_events() == 2
    assert list(Delivery.objects.values_list("destination_id", "status")) == [(mine.pk, "queued")]
