"""A minimal PDF 1.4 writer: one A4 page of Helvetica text, for the demo telco's invoices.

The output is deterministic (no dates, no random document id): the same lines always give the
same bytes, so the ground truth can carry each invoice's SHA-256. Text is encoded in
WinAnsiEncoding (cp1252), which covers French accents and the euro sign; other characters
become '?'.
"""

from __future__ import annotations

from collections.abc import Sequence

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 56
TITLE_SIZE = 16
BODY_SIZE = 11
LEADING = 16


def _pdf_string(text: str) -> bytes:
    """A PDF literal string: cp1252 bytes with \\, ( and ) escaped."""
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _content_stream(title: str, lines: Sequence[str]) -> bytes:
    parts = [
        b"BT",
        f"/F2 {TITLE_SIZE} Tf".encode(),
        f"{MARGIN} {PAGE_HEIGHT - MARGIN - TITLE_SIZE} Td".encode(),
        _pdf_string(title) + b" Tj",
        f"/F1 {BODY_SIZE} Tf {LEADING} TL".encode(),
        b"0 -12 Td",
    ]
    for line in lines:
        parts.append(b"T* " + _pdf_string(line) + b" Tj")
    parts.append(b"ET")
    return b"\n".join(parts) + b"\n"


def text_pdf(title: str, lines: Sequence[str]) -> bytes:
    """One page: `title` in bold, then `lines`, top to bottom. Returns the file's bytes."""
    stream = _content_stream(title, lines)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
         "/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>").encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"endstream",
    ]
    # The second line's high bytes tell transfer tools the file is binary.
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_offset = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode()
    out += b"0000000000 65535 f \n"  # each entry is exactly 20 bytes
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref_offset}\n%%EOF\n").encode()
    return bytes(out)
