"""Demonstration legacy systems and the ground truth of what each customer should get back.

`generator.generate()` writes, from a seed alone, an insurer policy database (SQLite), an
electricity network operator's metering exports (CSV and EBCDIC fixed-width files) and a telco
billing service's data (JSON and PDF files that `telco_server` serves over HTTP), together with
`ground_truth/`, the records the gateway must restitute to each registered customer. The
gateway's sources for these systems are declared in `sources.DEMO_SOURCES`.
"""
