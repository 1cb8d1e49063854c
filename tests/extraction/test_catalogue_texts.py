"""Every field a customer reads is explained in words, in both languages (no type fallback)."""

from __future__ import annotations

import pytest

from restitution.catalogue import DEFINITIONS, FIELD_LABELS


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.slug)
def test_every_field_has_help_and_a_label_in_english_and_french(definition):
    unexplained = [name for name in definition.properties
                   if not all((definition.field_help.get(name) or {}).get(lang) for lang in ("en", "fr"))]
    unlabelled = [name for name in definition.properties if name not in FIELD_LABELS]
    assert unexplained == [], f"{definition.slug}: fields without help in EN and FR"
    assert unlabelled == [], f"{definition.slug}: fields without a label"


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.slug)
def test_help_only_names_fields_that_exist(definition):
    assert set(definition.field_help) <= set(definition.properties)
