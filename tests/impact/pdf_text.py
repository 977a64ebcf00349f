"""The text a PDF shows, read back from its content streams (enough for fpdf2's output)."""

from __future__ import annotations

import re
import zlib

_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.DOTALL)
_SHOWN = re.compile(rb"\((.*?)(?<!\\)\)\s*Tj")


def pdf_text(pdf: bytes) -> str:
    """Every string the PDF's pages show, in order, joined by spaces."""
    assert pdf.startswith(b"%PDF-"), pdf[:16]
    shown = []
    for raw in _STREAM.findall(pdf):
        try:
            content = zlib.decompress(raw)
        except zlib.error:
            content = raw
        shown += [s.replace(rb"\(", b"(").replace(rb"\)", b")") for s in _SHOWN.findall(content)]
    return " ".join(s.decode("latin-1") for s in shown)
