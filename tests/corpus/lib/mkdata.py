"""Builds the corpus data tree: a small company file share. See ../mkdata.sh for usage.

Deterministic: every byte comes from one random.Random(seed), zip entries carry fixed dates
and mtimes are set from the seed, so two runs with the same seed and class give the same
manifest (../manifest.sh).
"""
import json
import os
import random
import sqlite3
import struct
import sys
import zlib

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import formats  # noqa: E402

MIB = 1 << 20

CLASSES = {
    # files per leaf folder, sub-folder fan-out, MiB-sized blobs, VM disks, images, logs
    "small": dict(files=(4, 9), fanout=2, blobs=[1, 1, 2, 3], vm_size=48 * MIB,
                  vm_disks=2, vm_chunks=3, pngs=10, png_max=96, jpegs=5, db_rows=1500,
                  dbs=2, logs=24),
    "default": dict(files=(10, 24), fanout=3, blobs=[1, 2, 2, 3, 4, 4, 6, 8, 8, 12, 16, 16, 24],
                    vm_size=2048 * MIB, vm_disks=3, vm_chunks=8, pngs=60, png_max=256, jpegs=30,
                    db_rows=20000, dbs=4, logs=80),
}

WORDS = ("invoice quarterly budget forecast customer supplier contract renewal meeting agenda "
         "minutes action item deadline approval review draft final revenue expense payroll "
         "benefits onboarding training policy compliance audit server network backup storage "
         "release milestone roadmap design specification requirement test result summary "
         "region market campaign lead pipeline discount order shipment warehouse inventory "
         "account balance ledger tax report analysis risk project team manager director the of "
         "and to in for on with by from at as is was will be this that these our your").split()
NAMES = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy "
         "Rupert Sybil Trent Victor Walter").split()
DEPTS = {
    "Finance": ["Invoices", "Budgets", "Audit"],
    "HR": ["Contracts", "Reviews", "Policies"],
    "Engineering": ["Specs", "src", "Releases"],
    "Sales": ["2023", "2024", "Leads"],
    "Legal": ["NDAs", "Cases"],
    "Marketing": ["Images", "Campaigns"],
    "IT": ["logs", "Scripts"],
    "Shared": ["Templates", "Scans"],
}


class Gen:
    def __init__(self, root, cls, seed):
        self.root, self.c, self.r = root, CLASSES[cls], random.Random(seed)

    # ---- content ----
    def sentence(self, n=None):
        n = n or self.r.randrange(6, 18)
        s = " ".join(self.r.choice(WORDS) for _ in range(n))
        return s[0].upper() + s[1:] + "."

    def paragraph(self):
        return " ".join(self.sentence() for _ in range(self.r.randrange(3, 8)))

    def text(self):
        return ("\n\n".join(self.paragraph() for _ in range(self.r.randrange(2, 12))) + "\n").encode()

    def csv(self):
        rows = ["date,customer,item,quantity,unit_price,total"]
        for _ in range(self.r.randrange(50, 600)):
            q, p = self.r.randrange(1, 90), self.r.randrange(100, 99999) / 100
            rows.append("2023-%02d-%02d,%s %s,%s,%d,%.2f,%.2f" % (
                self.r.randrange(1, 13), self.r.randrange(1, 29), self.r.choice(NAMES),
                self.r.choice(WORDS), self.r.choice(WORDS), q, p, q * p))
        return ("\n".join(rows) + "\n").encode()

    def json(self):
        recs = [{"id": i, "owner": self.r.choice(NAMES), "status": self.r.choice(["open", "closed", "hold"]),
                 "tags": [self.r.choice(WORDS) for _ in range(3)], "note": self.sentence()}
                for i in range(self.r.randrange(5, 80))]
        return (json.dumps({"version": 2, "records": recs}, indent=2) + "\n").encode()

    def source(self, name):
        fns = []
        for i in range(self.r.randrange(2, 8)):
            fns.append("static int %s_%d(int x)\n{\n\treturn x * %d + %d; /* %s */\n}\n" % (
                name, i, self.r.randrange(2, 99), self.r.randrange(100), self.sentence(5)))
        return ("/* %s */\n#include <stdio.h>\n\n%s" % (self.sentence(), "\n".join(fns))).encode()

    def log(self):
        lines = []
        t = self.r.randrange(1_700_000_000, 1_710_000_000)
        for _ in range(self.r.randrange(200, 1200)):
            t += self.r.randrange(0, 40)
            lines.append("%d host%02d %s[%d]: %s" % (t, self.r.randrange(20), self.r.choice(
                ["sshd", "cron", "nginx", "smbd", "kernel", "backup"]), self.r.randrange(100, 30000),
                self.sentence(8)))
        return ("\n".join(lines) + "\n").encode()

    def blob(self, size):
        """Binary-ish: records, tables, a few incompressible sections, zero padding."""
        out = bytearray(b"\x7fBLB" + struct.pack("<IQ", 3, size))
        while len(out) < size:
            kind = self.r.randrange(4)
            n = min(size - len(out), self.r.randrange(4096, 256 * 1024))
            if kind == 0:
                out += self.r.randbytes(n)
            elif kind == 1:
                out += bytes(n)
            else:
                rec = b"".join(struct.pack("<IIdd", i, self.r.randrange(1 << 20), i * 0.5,
                                           self.r.random()) for i in range(n // 24 + 1))
                out += rec[:n]
        return bytes(out[:size])

    # ---- files ----
    def write(self, rel, data):
        path = os.path.join(self.root, rel) if isinstance(rel, str) else os.path.join(os.fsencode(self.root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def office_file(self, d, i):
        kind = self.r.choice(["txt", "md", "csv", "json", "pdf", "docx", "xlsx", "docx", "pdf"])
        stem = "%s-%s-%d" % (self.r.choice(WORDS), self.r.choice(WORDS), i)
        if kind in ("txt", "md"):
            data = self.text()
        elif kind == "csv":
            data = self.csv()
        elif kind == "json":
            data = self.json()
        elif kind == "pdf":
            data = formats.pdf_encode([self.sentence(10) for _ in range(self.r.randrange(5, 45))], stem)
        elif kind == "docx":
            data = formats.docx_encode([self.paragraph() for _ in range(self.r.randrange(2, 30))])
        else:
            data = formats.xlsx_encode([["Item", "Qty", "Price"]] + [
                [self.r.choice(WORDS), self.r.randrange(1, 500), self.r.randrange(1, 10000) / 100]
                for _ in range(self.r.randrange(5, 200))])
        self.write(os.path.join(d, stem + "." + kind), data)

    def folders(self):
        for dept, subs in DEPTS.items():
            for sub in subs:
                d = os.path.join(dept, sub)
                leaves = [d] + [os.path.join(d, "%s-%d" % (self.r.choice(WORDS), k))
                                for k in range(self.r.randrange(0, self.c["fanout"] + 1))]
                for leaf in leaves:
                    for i in range(self.r.randrange(*self.c["files"])):
                        if sub == "src":
                            self.write(os.path.join(leaf, "mod%d.c" % i), self.source("mod%d" % i))
                        else:
                            self.office_file(leaf, i)

    def logs(self):
        for i in range(self.c["logs"]):
            name = self.r.choice(["syslog", "auth", "nginx-access", "backup", "samba", "cron"])
            self.write("IT/logs/%s-%d.log" % (name, i), self.log())

    def images(self):
        for i in range(self.c["pngs"]):
            w, h = self.r.randrange(16, self.c["png_max"]), self.r.randrange(16, self.c["png_max"])
            self.write("Marketing/Images/photo-%03d.png" % i, formats.png_encode(w, h, formats.photo_rows(self.r, w, h)))
        for i in range(self.c["jpegs"]):
            w, h = 8 * self.r.randrange(4, 40), 8 * self.r.randrange(4, 30)
            self.write("Shared/Scans/scan-%03d.jpg" % i, formats.jpeg_encode(self.r, w, h))
        w, h = 64, 48
        self.write("Marketing/Images/raw-banner.ppm", formats.ppm_encode(w, h, formats.photo_rows(self.r, w, h)))

    def databases(self):
        for i in range(self.c["dbs"]):
            path = os.path.join(self.root, "Finance", "ledger-%d.db" % i if i else "ledger.db")
            db = sqlite3.connect(path)
            db.execute("PRAGMA journal_mode=DELETE")
            db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, day TEXT, account TEXT, "
                       "amount REAL, memo TEXT)")
            db.executemany("INSERT INTO entries VALUES (?,?,?,?,?)", [
                (k, "2023-%02d-%02d" % (self.r.randrange(1, 13), self.r.randrange(1, 29)),
                 self.r.choice(NAMES), self.r.randrange(-100000, 100000) / 100, self.sentence(6))
                for k in range(self.c["db_rows"])])
            db.commit()
            db.close()

    def blobs(self):
        for i, mib in enumerate(self.c["blobs"]):
            name = self.r.choice(["firmware", "dataset", "export", "capture", "archive"])
            self.write("Engineering/Releases/%s-%02d.bin" % (name, i), self.blob(mib * MIB))

    def vm_disks(self):
        size, chunks = self.c["vm_size"], self.c["vm_chunks"]
        for i in range(self.c["vm_disks"]):
            qcow = i % 2 == 0
            name = "vm/%s%02d%s" % (self.r.choice(["web", "db", "mail", "file"]), i,
                                    ".qcow2" if qcow else "-flat.vmdk")
            path = self.write(name, b"")
            with open(path, "r+b") as f:
                f.truncate(size)
                if qcow:  # QEMU qcow2 v3 header: magic, version, cluster_bits 16, virtual size
                    f.write(b"QFI\xfb" + struct.pack(">IQIIQIIQQIIQQQQII", 3, 0, 0, 16, size * 4, 0,
                                                     8, 0x30000, 0x10000, 1, 0, 0, 0, 0, 0, 4, 104))
                else:  # raw disk: an MBR with one Linux partition
                    mbr = bytearray(512)
                    mbr[446:462] = struct.pack("<BBBBBBBBII", 0x80, 0, 2, 0, 0x83, 0xfe, 0xff, 0xff,
                                               2048, size // 512 - 2048)
                    mbr[510:512] = b"\x55\xaa"
                    f.write(mbr)
                for k in range(chunks):  # filesystem-ish data at a few offsets, holes between
                    off = (size // chunks) * k + MIB
                    f.seek(off - off % 4096)
                    f.write(self.blob(MIB // 2) if k % 2 else self.text() * 8)
            if not qcow:
                self.write(name.replace("-flat.vmdk", ".vmdk"), (
                    '# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\ncreateType="vmfs"\n'
                    'RW %d VMFS "%s"\nddb.adapterType = "lsilogic"\n' % (
                        self.r.randrange(1 << 32), size // 512, os.path.basename(name))).encode())

    def odd_names(self):
        d = b"Shared/odd names/"
        for raw in (b"Meeting notes 2023.txt", b"budget (final) v2.csv", b"caf\xe9-menu.txt",
                    b"line\nbreak.txt", "r\u00e9sum\u00e9.txt".encode(), b" leading space.txt",
                    b"-dash.txt", b"tab\there.txt", "\u6587\u4ef6 \u00fc.txt".encode(), b"back\\slash.txt"):
            self.write(d + raw, self.text())
        self.write(d + b"empty.txt", b"")
        os.symlink("../Templates", os.path.join(os.fsencode(self.root), d + b"templates-link"))

    def archives(self):
        # Already-compressed files that live on every share: high entropy, never modified.
        import gzip
        import io
        self.write("Shared/Templates/letters.zip", formats._zip(
            [("letter-%d.txt" % i, self.text()) for i in range(5)]))
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
            g.write(self.csv() * 4)
        self.write("Finance/Audit/export-2022.csv.gz", buf.getvalue())

    def mtimes(self):
        base = 1_672_531_200  # 2023-01-01
        paths = []
        for dp, dns, fns in os.walk(os.fsencode(self.root)):
            paths += [os.path.join(dp, n) for n in fns + dns]
        for p in sorted(paths, key=lambda b: (-b.count(b"/"), b)):  # children before parents
            t = base + self.r.randrange(0, 400 * 86400)
            os.utime(p, (t, t), follow_symlinks=False)
        os.utime(self.root, (base, base))


def main():
    root, cls, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cls not in CLASSES:
        sys.exit("mkdata: size class must be one of %s" % ", ".join(CLASSES))
    os.makedirs(root, exist_ok=True)
    if os.listdir(root):
        sys.exit("mkdata: %s is not empty" % root)
    os.umask(0o022)
    g = Gen(root, cls, seed)
    g.folders()
    g.logs()
    g.images()
    g.databases()
    g.blobs()
    g.vm_disks()
    g.odd_names()
    g.archives()
    g.mtimes()


if __name__ == "__main__":
    main()
