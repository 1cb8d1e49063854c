"""The hand-written PDF: well-formed structure, correct cross-reference table, fixed bytes."""

from __future__ import annotations

import re

from demo.pdf import text_pdf


def test_xref_offsets_point_at_their_objects() -> None:
    pdf = text_pdf("Facture FAC-1", ["Total TTC : 12,30 €", "Période (mars) \\ fin", "Zoé"])
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref\n0 7\n")
    entries = pdf[startxref:].split(b"\n", 2)[2]
    table = entries[:20 * 7]
    rows = [table[i:i + 20] for i in range(0, len(table), 20)]
    assert rows[0] == b"0000000000 65535 f \n"
    for number, row in enumerate(rows[1:], start=1):
        assert row.endswith(b" 00000 n \n")
        offset = int(row[:10])
        assert pdf[offset:].startswith(f"{number} 0 obj\n".encode())
    assert b"/Size 7 /Root 1 0 R" in pdf


def test_stream_length_and_text_encoding() -> None:
    pdf = text_pdf("Titre", ["Total : 5 €", "(parenthèses)"])
    length = int(re.search(rb"/Length (\d+) >>\nstream\n", pdf).group(1))
    start = pdf.index(b"stream\n") + len(b"stream\n")
    assert pdf[start + length:].startswith(b"endstream")
    assert b"(Total : 5 \x80) Tj" in pdf  # the euro sign in WinAnsiEncoding
    assert b"(\\(parenth\xe8ses\\)) Tj" in pdf
    assert b"/BaseFont /Helvetica " in pdf


def test_same_text_same_bytes() -> None:
    assert text_pdf("A", ["b", "c"]) == text_pdf("A", ["b", "c"])
    assert text_pdf("A", ["b", "c"]) != text_pdf("A", ["b", "d"])
