"""The demo as a client of the gateway: installed in the embedded and test shapes only."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Synthetic legacy systems, their ground truth and the `demo`/`demo_serve` commands.

    Never in INSTALLED_APPS in production (config/settings.py); the product never imports it.
    """

    name = "demo"
    label = "demo"
    verbose_name = "Demo"
