"""The restitution gateway: datasets, legacy sources, extraction, the record store, consent."""
