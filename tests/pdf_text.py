"""Enough of PDF to read back what headless Chromium (Skia) prints, for the report
export's test: objects and their Flate streams, the page tree, the content streams a page
draws (its forms included), and the text it shows in Type0 fonts, whose ToUnicode CMaps
give the characters. Not a general PDF reader: no object streams, no encryption, no
simple-font encodings; what it cannot read is missing from the text or fails an
assertion, so a test fails, never passes, on it. (pypdf reads more, as one more dependency
for one test.)"""

from __future__ import annotations

import re
import unicodedata
import zlib

PDF_OBJ = re.compile(rb"(\d+)\s+0\s+obj\b")
PDF_REF = re.compile(rb"(\d+)\s+0\s+R\b")
PDF_TEXT_OPS = re.compile(
    rb"/([^\s/\[\]<>()]+)\s+[-\d.]+\s+Tf"  # select a font
    rb"|/([^\s/\[\]<>()]+)\s+Do"  # draw a form XObject
    rb"|<([0-9A-Fa-f]*)>\s*Tj"  # show a string
    rb"|\[((?:[^\]\\]|\\.)*)\]\s*TJ"  # show strings, with kerning between them
)
PDF_LINETO = re.compile(rb"[-\d.]+\s+[-\d.]+\s+l\b")


def pdf_objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number -> (its dictionary, its stream inflated, or None)."""
    objs: dict[int, tuple[bytes, bytes | None]] = {}
    pos = 0
    while m := PDF_OBJ.search(data, pos):
        start = m.end()
        end = data.index(b"endobj", start)
        stream = data.find(b"stream", start, end)
        if stream == -1:
            objs[int(m.group(1))] = (data[start:end], None)
            pos = end
            continue
        head = data[start:stream]
        body = stream + len(b"stream") + (2 if data[stream + 6 : stream + 8] == b"\r\n" else 1)
        length = re.search(rb"/Length\s+(\d+)(?!\s+\d+\s+R)", head)
        assert length, f"object {m.group(1)!r}: stream length not given directly"
        raw = data[body : body + int(length.group(1))]
        inflated = zlib.decompressobj().decompress(raw) if b"/FlateDecode" in head else raw
        objs[int(m.group(1))] = (head, inflated)
        pos = data.index(b"endobj", body + len(raw))
    return objs


def _to_unicode(cmap: bytes) -> dict[int, str]:
    table: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            table[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(
            rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block
        ):
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                table[code] = chr(int(dst, 16) + i)
    return table


class PdfPages:
    """The pages of a PDF in order, each as its text and its content streams."""

    def __init__(self, data: bytes) -> None:
        self.objs = pdf_objects(data)
        catalog = next(h for h, _ in self.objs.values() if re.search(rb"/Type\s*/Catalog", h))
        self.count = self._page_count(catalog)
        self.pages: list[int] = []
        self._walk(self._ref(catalog, b"Pages"))

    def _ref(self, head: bytes, key: bytes) -> int:
        m = re.search(rb"/" + key + rb"\s+(\d+)\s+0\s+R", head)
        assert m, f"no /{key.decode()} in {head[:200]!r}"
        return int(m.group(1))

    def _page_count(self, catalog: bytes) -> int:
        m = re.search(rb"/Count\s+(\d+)", self.objs[self._ref(catalog, b"Pages")][0])
        assert m
        return int(m.group(1))

    def _walk(self, num: int) -> None:
        head = self.objs[num][0]
        if re.search(rb"/Type\s*/Pages\b", head):
            kids = re.search(rb"/Kids\s*\[(.*?)\]", head, re.S)
            assert kids
            for kid in PDF_REF.findall(kids.group(1)):
                self._walk(int(kid))
        else:
            assert re.search(rb"/Type\s*/Page\b", head), head[:200]
            self.pages.append(num)

    def _resources(self, head: bytes, kind: bytes) -> dict[bytes, int]:
        ref = re.search(rb"/Resources\s+(\d+)\s+0\s+R", head)
        if ref:
            head = self.objs[int(ref.group(1))][0]
        m = re.search(rb"/" + kind + rb"\s*<<(.*?)>>", head, re.S)
        return (
            {n: int(o) for n, o in re.findall(rb"/(\S+?)\s+(\d+)\s+0\s+R", m.group(1))} if m else {}
        )

    def _contents(self, num: int) -> list[tuple[bytes, bytes]]:
        """(head, stream) of the content streams a page or form draws with."""
        head, body = self.objs[num]
        if body is not None:  # a form XObject
            return [(head, body)]
        m = re.search(rb"/Contents\s*(\[.*?\]|\d+\s+0\s+R)", head, re.S)
        assert m
        return [(head, self.objs[int(r)][1] or b"") for r in PDF_REF.findall(m.group(1))]

    def streams(self, num: int) -> list[bytes]:
        """A page's content streams and those of the forms it draws, recursively."""
        out = []
        for head, body in self._contents(num):
            out.append(body)
            forms = self._resources(head, b"XObject")
            for name in re.findall(rb"/(\S+)\s+Do\b", body):
                if name in forms and self.objs[forms[name]][1] is not None:
                    out.extend(self.streams(forms[name]))
        return out

    def text(self, num: int) -> str:
        """The characters a page shows, in drawing order (NFKC: ligatures split)."""
        out: list[str] = []
        for head, body in self._contents(num):
            fonts = {
                name: self.objs[ref][0] for name, ref in self._resources(head, b"Font").items()
            }
            forms = self._resources(head, b"XObject")
            table: dict[int, str] = {}
            for m in PDF_TEXT_OPS.finditer(body):
                font, form, one, many = m.groups()
                if font is not None:
                    cmap = re.search(rb"/ToUnicode\s+(\d+)\s+0\s+R", fonts.get(font, b""))
                    table = _to_unicode(self.objs[int(cmap.group(1))][1] or b"") if cmap else {}
                elif form is not None:
                    if form in forms and self.objs[forms[form]][1] is not None:
                        out.append(self.text(forms[form]))
                else:
                    for h in [one] if one is not None else re.findall(rb"<([0-9A-Fa-f]*)>", many):
                        out.extend(
                            table.get(int(h[i : i + 4], 16), "\ufffd") for i in range(0, len(h), 4)
                        )
        return unicodedata.normalize("NFKC", "".join(out))
