#!/bin/bash
# _make.sh: how the seeds beside this script were made (also a text seed itself).
# Real files from the tools on a Debian 12 machine (gzip bzip2 xz zstd zip p7zip-full
# sqlite3 tar openssl python3); small images from CPython's test data (imghdrdata); the
# formats with no tool here (pdf, mp4, qcow2, vmdk, ole, rar5) are written by python3 to the
# published layouts. Run from this directory: bash _make.sh
set -euo pipefail
cd "$(dirname "$0")"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
printf 'The quarterly report lists each customer balance.\nSigned, accounts.\n' > "$T/a.txt"
for i in $(seq 1 30); do echo "ledger entry $i for account $((i * 37))" >> "$T/a.txt"; done
cp "$T/a.txt" text.txt
gzip -9 -n -c "$T/a.txt" > text.gz
bzip2 -c "$T/a.txt" > text.bz2
xz -c "$T/a.txt" > text.xz
zstd -q -c "$T/a.txt" > text.zst
(cd "$T" && zip -q -X plain.zip a.txt && zip -q -X -P secret pw.zip a.txt &&
 7z a -bd -bso0 -tzip -psecret -mem=AES256 aes.zip a.txt)
cp "$T/plain.zip" plain.zip; cp "$T/pw.zip" zipcrypto.zip; cp "$T/aes.zip" winzip-aes.zip
mkdir -p "$T/many"; for i in $(seq 1 40); do echo "file $i" > "$T/many/f_$i.txt"; done
(cd "$T" && 7z a -bd -bso0 plain.7z a.txt && 7z a -bd -bso0 -psecret pw-small.7z a.txt &&
 7z a -bd -bso0 -psecret pw-many.7z many && 7z a -bd -bso0 -psecret -mhe=on pw-hdr.7z many)
cp "$T/plain.7z" plain.7z; cp "$T/pw-small.7z" aes-small.7z
cp "$T/pw-many.7z" aes-hidden.7z; cp "$T/pw-hdr.7z" aes-header.7z
rm -f db.sqlite; sqlite3 db.sqlite 'create table t(a, b); insert into t values (1, "x");'
(cd "$T" && tar --format=ustar -cf a.tar a.txt) && cp "$T/a.tar" ustar.tar
head -c 2048 /bin/true > elf-head.bin
openssl enc -aes-256-cbc -pbkdf2 -pass pass:x -in "$T/a.txt" -out openssl-enc.bin
head -c 1024 /dev/urandom > random.bin
I=/root/.pyenv/versions/3.7.16/lib/python3.7/test/imghdrdata
for e in png jpg gif tiff webp; do [ -f "$I/python.$e" ] && cp "$I/python.$e" "image.$e"; done
python3 - <<'PY'
import struct, zlib, zipfile, io
def w(n, b): open(n, 'wb').write(b)
# PNG 4x4 grey, written chunk by chunk
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
raw = b''.join(b'\0' + bytes(range(i * 4, i * 4 + 4)) for i in range(4))
w('tiny.png', b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 4, 4, 8, 0, 0, 0, 0))
  + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
# OOXML and ODF skeletons (the names are what identifies them)
def z(name, entries, stored_first=False):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as f:
        for i, (n, d) in enumerate(entries):
            f.writestr(n, d, compress_type=zipfile.ZIP_STORED if (stored_first and i == 0) else zipfile.ZIP_DEFLATED)
    w(name, b.getvalue())
ct = '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
z('doc.docx', [('[Content_Types].xml', ct), ('_rels/.rels', '<Relationships/>'), ('word/document.xml', '<w:document/>')])
z('book.xlsx', [('[Content_Types].xml', ct), ('_rels/.rels', '<Relationships/>'), ('xl/workbook.xml', '<workbook/>')])
z('deck.pptx', [('[Content_Types].xml', ct), ('_rels/.rels', '<Relationships/>'), ('ppt/presentation.xml', '<p/>')])
z('doc.odt', [('mimetype', 'application/vnd.oasis.opendocument.text'), ('content.xml', '<office:document-content/>')], stored_first=True)
# PDF with an xref table, and one whose trailer names an /Encrypt dictionary
def pdf(extra):
    objs = [b'<< /Type /Catalog /Pages 2 0 R >>', b'<< /Type /Pages /Kids [] /Count 0 >>']
    out = b'%PDF-1.4\n'; offs = []
    for i, o in enumerate(objs):
        offs.append(len(out)); out += b'%d 0 obj\n' % (i + 1) + o + b'\nendobj\n'
    x = len(out)
    out += b'xref\n0 %d\n0000000000 65535 f \n' % (len(objs) + 1)
    out += b''.join(b'%010d 00000 n \n' % o for o in offs)
    out += b'trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n' % (len(objs) + 1, extra, x)
    return out
w('doc.pdf', pdf(b''))
w('encrypted.pdf', pdf(b'/Encrypt << /Filter /Standard /V 2 /R 3 /O <00> /U <00> /P -4 >> '))
# MP4 and MOV: ftyp + free + mdat boxes
w('video.mp4', struct.pack('>I', 24) + b'ftypisom' + struct.pack('>I', 512) + b'isomiso2'
  + struct.pack('>I', 8) + b'free' + struct.pack('>I', 24) + b'mdat' + bytes(16))
w('video.mov', struct.pack('>I', 20) + b'ftypqt  ' + struct.pack('>I', 0x200) + b'qt  '
  + struct.pack('>I', 16) + b'mdat' + bytes(8))
# qcow2 v3 header (104 bytes + padding), plain and LUKS-encrypted
def qcow(crypt):
    h = b'QFI\xfb' + struct.pack('>IQIIQIIQQIIQ', 3, 0, 0, 16, 1 << 20, crypt, 0, 0x30000, 0x10000, 1, 0, 0)
    h += struct.pack('>QQII', 0, 0, 4, 104)
    return h + bytes(512 - len(h))
w('disk.qcow2', qcow(0)); w('disk-luks.qcow2', qcow(2))
# VMDK sparse extent header
w('disk.vmdk', b'KDMV' + struct.pack('<IIQQQQIQQQ', 1, 3, 2048, 128, 1, 1, 512, 0, 21, 0) + bytes(512 - 72))
# OLE compound file whose directory holds an EncryptedPackage stream (protected OOXML)
ole = bytearray(1536)
ole[0:8] = b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1'
struct.pack_into('<HHHHH', ole, 24, 0x3e, 3, 0xfffe, 9, 6)
name = 'EncryptedPackage'.encode('utf-16-le')
ole[512:512 + len(name)] = name
w('protected.docx', bytes(ole))
ole2 = bytearray(ole); ole2[512:512 + len(name)] = 'WordDocument'.encode('utf-16-le') + bytes(len(name) - 24)
w('legacy.doc', bytes(ole2))
# RAR5: signature, main archive header; and one with the archive encryption header first
def vint(n):
    o = b''
    while True:
        b = n & 0x7f; n >>= 7
        o += bytes([b | (0x80 if n else 0)])
        if not n: return o
def rar5_block(body):
    data = vint(len(body)) + body
    return struct.pack('<I', zlib.crc32(data)) + data
sig = b'Rar!\x1a\x07\x01\x00'
w('plain.rar', sig + rar5_block(vint(1) + vint(0) + vint(0)) + rar5_block(vint(5) + vint(0) + vint(0)))
w('headers-encrypted.rar', sig + rar5_block(vint(4) + vint(0) + vint(0) + vint(0) + bytes([15]) + bytes(16) + bytes(12)))
# text kinds
w('data.json', b'{"name": "ward", "tags": ["a", "b"], "n": {"x": [1, 2, 3]}}\n')
w('table.csv', b'id,name,amount\n1,alice,10.5\n2,"bob, jr",7\n3,carol,0\n')
w('page.html', b'<!DOCTYPE html>\n<html><head><title>t</title></head><body><p>hi</p></body></html>\n')
w('feed.xml', b'<?xml version="1.0" encoding="UTF-8"?>\n<feed><entry id="1">x</entry></feed>\n')
w('utf8.txt', 'Grüße, naïve café — 日本語のテキスト\n'.encode())
PY
ls -la
