"""Settings of the load run only: the product's settings, plus a bare JSON view as a baseline."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.load.urls"
