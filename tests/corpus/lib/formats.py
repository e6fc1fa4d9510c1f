"""Small, dependency-free writers and readers for the file formats in the corpus data tree.

Everything is built by hand from the format specs so the corpus needs nothing beyond
python3's standard library: PNG (RFC 2083, zlib), baseline JPEG (ITU T.81), PDF 1.4,
and Office Open XML (ECMA-376) docx/xlsx as real zip containers. Output is deterministic
for a given random.Random, so the data tree is reproducible from a seed.
"""
import io
import struct
import zipfile
import zlib

# ---------- PNG ----------

def _png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_encode(width, height, rgb_rows, level=6):
    """rgb_rows: list of bytes, each width*3 long. Filter type 0 (None) on every row."""
    raw = b"".join(b"\x00" + bytes(r) for r in rgb_rows)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) +
            _png_chunk(b"IDAT", zlib.compress(raw, level)) + _png_chunk(b"IEND", b""))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def png_decode(data):
    """Decodes 8-bit RGB/RGBA/gray PNGs (non-interlaced), checking every chunk CRC.
    Returns (width, height, channels, rows)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError("bad CRC in %r" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace or ctype not in (0, 2, 6):
        raise ValueError("unsupported PNG")
    ch = {0: 1, 2: 3, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * ch
    rows, prev, p = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                line[i] = (line[i] + _paeth(a, b, c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows


def photo_rows(rnd, w, h):
    """A gradient with noise and a few blobs: compresses like a real photo, not like a flat fill."""
    cx, cy = rnd.randrange(w), rnd.randrange(h)
    base = [rnd.randrange(256) for _ in range(3)]
    rows = []
    for y in range(h):
        r = bytearray()
        for x in range(w):
            d = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
            for c in range(3):
                v = base[c] + (x * (c + 1) - y * (3 - c)) // 3 - int(d) // 2 + rnd.randrange(-12, 13)
                r.append(v & 255 if 0 <= v <= 255 else (0 if v < 0 else 255))
        rows.append(bytes(r))
    return rows


def ppm_encode(w, h, rows):
    return b"P6\n%d %d\n255\n" % (w, h) + b"".join(rows)


def ppm_decode(data):
    parts, pos = [], 0
    while len(parts) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    pos += 1
    if parts[0] != b"P6" or parts[3] != b"255":
        raise ValueError("unsupported PPM")
    w, h = int(parts[1]), int(parts[2])
    px = data[pos:pos + w * h * 3]
    return w, h, [px[y * w * 3:(y + 1) * w * 3] for y in range(h)]

# ---------- JPEG (baseline, one gray component) ----------

# ITU T.81 Annex K.3 table K.3: luminance DC code lengths and symbols.
_DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
_DC_VALS = list(range(12))
# A small AC table of our own (DHT may carry any valid table): EOB and run-0 sizes 1..10.
# Canonical codes: 2x2 bits, 3x3 bits, then 4..9 bits; no code is all ones.
_AC_BITS = [0, 2, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
_AC_VALS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A]


def _huff_codes(bits, vals):
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


class _BitWriter:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, length):
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)  # byte stuffing
                self.acc, self.n = 0, 0

    def flush(self):
        while self.n:
            self.put(1, 1)  # pad with one bits
        return bytes(self.out)


def _category(v):
    return abs(v).bit_length()


def _vbits(v, s):
    return v if v >= 0 else v + (1 << s) - 1


def jpeg_encode(rnd, w, h):
    """A real baseline JPEG (SOF0, Huffman) with a gradient of DC levels and random
    low-frequency AC texture, so its bytes look like a compressed photo."""
    assert w % 8 == 0 and h % 8 == 0
    dc_codes, ac_codes = _huff_codes(_DC_BITS, _DC_VALS), _huff_codes(_AC_BITS, _AC_VALS)
    bw, prev = _BitWriter(), 0
    for by in range(h // 8):
        for bx in range(w // 8):
            level = (bx * 255 // max(1, w // 8 - 1) + by * 64) % 256
            dc = ((level - 128) * 8) // 16  # quantiser 16 in the DQT below
            diff = dc - prev
            prev = dc
            s = _category(diff)
            bw.put(*dc_codes[s])
            if s:
                bw.put(_vbits(diff, s), s)
            for _ in range(rnd.randrange(3, 24)):  # zig-zag positions 1.. with run 0
                v = rnd.choice((-1, 1)) * rnd.randrange(1, 24)
                s = _category(v)
                bw.put(*ac_codes[s])
                bw.put(_vbits(v, s), s)
            bw.put(*ac_codes[0x00])  # EOB
    scan = bw.flush()
    out = io.BytesIO()
    out.write(b"\xFF\xD8")
    out.write(b"\xFF\xE0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    out.write(b"\xFF\xDB" + struct.pack(">H", 67) + b"\x00" + bytes([16] * 64))
    out.write(b"\xFF\xC0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00")
    for cls, bits, vals in ((0x00, _DC_BITS, _DC_VALS), (0x10, _AC_BITS, _AC_VALS)):
        out.write(b"\xFF\xC4" + struct.pack(">H", 2 + 1 + 16 + len(vals)) + bytes([cls]) +
                  bytes(bits) + bytes(vals))
    out.write(b"\xFF\xDA" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3F\x00")
    out.write(scan)
    out.write(b"\xFF\xD9")
    return out.getvalue()

# ---------- PDF ----------

def pdf_encode(lines, title="Report"):
    """A minimal valid PDF 1.4: one page, Helvetica text, correct xref offsets."""
    def esc(s):
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    text = "BT /F1 11 Tf 50 780 Td 14 TL\n" + "".join("(%s) '\n" % esc(l) for l in lines[:50]) + "ET\n"
    stream = zlib.compress(text.encode("latin-1", "replace"))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (" + esc(title).encode("latin-1", "replace") + b") /Producer (corpus) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offs = []
    for i, o in enumerate(objs, 1):
        offs.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offs)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)

# ---------- Office Open XML ----------

_ZIP_DATE = (2023, 3, 14, 9, 26, 50)


def _zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, _ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return buf.getvalue()


def _x(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         'relationships/officeDocument" Target="%s"/></Relationships>')


def docx_document_xml(paragraphs):
    body = "".join('<w:p><w:r><w:t xml:space="preserve">%s</w:t></w:r></w:p>' % _x(p) for p in paragraphs)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            '<w:body>%s<w:sectPr/></w:body></w:document>' % body)


def docx_encode(paragraphs):
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.wordprocessingml.document.main+xml"/></Types>')
    return _zip([("[Content_Types].xml", ct), ("_rels/.rels", _RELS % "word/document.xml"),
                 ("word/document.xml", docx_document_xml(paragraphs))])


def xlsx_encode(rows):
    def col(i):
        s = ""
        i += 1
        while i:
            i, r = divmod(i - 1, 26)
            s = chr(65 + r) + s
        return s
    cells = []
    for ri, row in enumerate(rows, 1):
        cs = []
        for ci, v in enumerate(row):
            ref = "%s%d" % (col(ci), ri)
            if isinstance(v, (int, float)):
                cs.append('<c r="%s"><v>%s</v></c>' % (ref, v))
            else:
                cs.append('<c r="%s" t="inlineStr"><is><t>%s</t></is></c>' % (ref, _x(str(v))))
        cells.append('<row r="%d">%s</row>' % (ri, "".join(cs)))
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             '<sheetData>%s</sheetData></worksheet>' % "".join(cells))
    wb = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
          'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
          '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
    wbrels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
              '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
              'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.spreadsheetml.sheet.main+xml"/>'
          '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.spreadsheetml.worksheet+xml"/></Types>')
    return _zip([("[Content_Types].xml", ct), ("_rels/.rels", _RELS % "xl/workbook.xml"),
                 ("xl/workbook.xml", wb), ("xl/_rels/workbook.xml.rels", wbrels),
                 ("xl/worksheets/sheet1.xml", sheet)])
