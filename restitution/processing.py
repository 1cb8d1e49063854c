"""GDPR Art. 15(1) facts per dataset: purposes, legal basis, recipients, retention, sources,
automated decisions, last extraction.

The operator edits `Dataset.processing` in the admin (texts in English and French); a fact left
out takes the default below. The sources and the last extraction are read from the sources
that feed the dataset, never typed by hand.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Max

from .models import Dataset, ExtractionRun

TEXT_KEYS = ("purposes", "legal_basis", "retention")

DEFAULTS: dict[str, Any] = {
    "purposes": {"en": "Managing your contract with us and meeting our legal obligations; giving you your "
                       "data back (data portability).",
                 "fr": "Gérer votre contrat avec nous et respecter nos obligations légales ; vous restituer "
                       "vos données (portabilité)."},
    "legal_basis": {"en": "Performance of a contract (GDPR Art. 6(1)(b)) and legal obligation (Art. 6(1)(c)); "
                          "sharing with an app: your consent (Art. 6(1)(a)).",
                    "fr": "Exécution d'un contrat (RGPD art. 6(1)(b)) et obligation légale (art. 6(1)(c)) ; "
                          "partage avec une application : votre consentement (art. 6(1)(a))."},
    "recipients": [{"en": "Our staff in charge of your contract", "fr": "Nos équipes en charge de votre contrat"},
                   {"en": "The apps and clouds you connect, only with your consent",
                    "fr": "Les applications et clouds que vous connectez, seulement avec votre consentement"}],
    "retention": {"en": "For the duration of your contract, then as long as the law requires.",
                  "fr": "Pendant la durée de votre contrat, puis le temps exigé par la loi."},
    "automated_decisions": False,
}


class InvalidProcessing(ValueError):
    """The operator's facts do not have the documented shape."""


def check(value: Any) -> None:
    """Refuse what is not the documented shape (the admin shows the message)."""
    if not isinstance(value, dict):
        raise InvalidProcessing("must be a JSON object")
    unknown = set(value) - {*TEXT_KEYS, "recipients", "automated_decisions"}
    if unknown:
        raise InvalidProcessing(f"unknown key(s): {', '.join(sorted(unknown))}")
    for key in TEXT_KEYS:
        if key in value and not _bilingual(value[key]):
            raise InvalidProcessing(f"{key} must be {{\"en\": text, \"fr\": text}}")
    if "recipients" in value and not (isinstance(value["recipients"], list)
                                      and all(_bilingual(r) for r in value["recipients"])):
        raise InvalidProcessing("recipients must be a list of {\"en\": text, \"fr\": text}")
    if "automated_decisions" in value and not isinstance(value["automated_decisions"], bool):
        raise InvalidProcessing("automated_decisions must be true or false")


def _bilingual(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) == {"en", "fr"}
            and all(isinstance(v, str) and v.strip() for v in value.values()))


def facts(dataset: Dataset) -> dict[str, Any]:
    """The dataset's facts as the API gives them (texts in both languages)."""
    stored = dataset.processing if isinstance(dataset.processing, dict) else {}
    result = {key: stored.get(key, DEFAULTS[key]) for key in DEFAULTS}
    sources = list(dataset.sources.order_by("name").values_list("name", flat=True))
    last = (ExtractionRun.objects.filter(source__datasets=dataset, status=ExtractionRun.Status.SUCCEEDED)
            .aggregate(last=Max("finished_at"))["last"])
    return {**result, "sources": sources, "last_extraction": last}


def in_language(facts_: dict[str, Any], language: str) -> dict[str, Any]:
    """The same facts with each text in one language, for pages and READMEs."""
    lang = "fr" if language.startswith("fr") else "en"
    return {**facts_, **{key: facts_[key][lang] for key in TEXT_KEYS},
            "recipients": [r[lang] for r in facts_["recipients"]]}
