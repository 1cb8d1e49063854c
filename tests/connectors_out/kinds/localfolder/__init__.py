"""A destination kind that lives only in the tests: records as JSON files in a local folder.

It proves that a kind is one folder plus one registry line (`CONNECTORS_EXTRA_KINDS`): nothing in
the product names it. The folder must hold a `.gateway-key` file whose content the customer types
(a credential the store checks, so the connect step has a refused side)."""
