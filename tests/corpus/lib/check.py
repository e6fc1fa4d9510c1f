"""Assertions for selftest.sh: did an attack change exactly what it claims, in the claimed
pattern, into real ciphertext; is a tree still made of valid files after ordinary work.

  check.py attack MODE BEFORE AFTER LOG EXT      ransim modes and the shell attacks
  check.py notes AFTER LOG                       one note per directory, all with one name
  check.py tree ROOT                             every file parses as what its name says
  check.py log LOG                               print the number of "enc" lines

Ciphertext test. All ransim ciphers are stream ciphers, so XOR(original, result) over an
encrypted range is the keystream itself: it must not compress (zlib ratio > 0.98) and must
have about 1/256 zero bytes, whatever the original was (even an already-random blob). Plain
ranges must be byte-identical. Prints one line per failure; exit status 1 if any.
"""
import base64
import gzip
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import zipfile
import zlib

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import formats  # noqa: E402

MIB = 1 << 20
fails = []


def fail(msg):
    fails.append(msg)
    print("  FAIL " + msg)


def rd(p):
    with open(p, "rb") as f:
        return f.read()


def xor(a, b):
    n = len(a)
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(n, "little")


def random_looking(d):
    """d is a keystream or ciphertext sample: incompressible, zero bytes near 1/256."""
    if len(d) < 64:
        return d.count(0) <= 2
    ratio = len(zlib.compress(d, 6)) / len(d)
    zeros = d.count(0)
    return ratio > (0.98 if len(d) >= 4096 else 0.9) and zeros <= len(d) / 256 * 2 + 8


def escaped(b):
    return b.decode("utf-8", "backslashreplace")


def read_log(log):
    """Returns [(kind, path-bytes)] from '<ns> <pid> <kind> <path>' lines."""
    out = []
    for line in rd(log).split(b"\n"):
        if not line:
            continue
        ns, pid, kind, path = line.split(b" ", 3)
        int(ns), int(pid)
        path = path.replace(b"\\\\", b"\0").replace(b"\\n", b"\n").replace(b"\0", b"\\")
        out.append((kind.decode(), path))
    return out


def check_ranges(name, orig, res, enc_ranges):
    """enc_ranges: sorted (start, end) pairs; everything else must be unchanged."""
    if len(res) != len(orig):
        return fail("%s: size %d -> %d" % (name, len(orig), len(res)))
    pos = 0
    for a, b in enc_ranges + [(len(orig), len(orig))]:
        if orig[pos:a] != res[pos:a]:
            return fail("%s: plain range [%d,%d) changed" % (name, pos, a))
        if a < b:
            # Sample big ranges in 256 KiB pieces to keep the check fast.
            step = 4 * MIB if b - a > 8 * MIB else b - a
            for s in range(a, b, step):
                e = min(b, s + min(step, 256 * 1024))
                if not random_looking(xor(orig[s:e], res[s:e])):
                    return fail("%s: range [%d,%d) is not ciphertext" % (name, s, e))
        pos = b


def strided(size, span, stride, limit):
    out, end = [], min(size, limit)
    for a in range(0, end, stride):
        out.append((a, min(a + span, end)))
    return out


def expect(mode, size):
    """(rename?, encrypted ranges) for a ransim mode and a file of this size."""
    full = [(0, min(size, 512 * MIB))]
    table = {
        "babuk-esxi": (True, full), "slow": (True, full), "fork-per-file": (True, full),
        "threads": (True, full), "mmap": (True, full), "otrunc": (True, [(0, size)]),
        "lockfile": (True, None),
        "header": (False, [(0, min(size, 4096))]),
        "esxiargs": (False, strided(size, MIB, 2 * MIB, size)),
    }
    if mode == "babuk-nas":
        return True, ([(0, min(size, 4 * MIB))] if size < 10 * MIB else strided(size, MIB, 10 * MIB, size))
    return table[mode]


def attack(mode, before, after, log, ext):
    before, after = os.fsencode(before), os.fsencode(after)
    ext = os.fsencode(ext)
    entries = [p for k, p in read_log(log) if k == "enc"]
    if not entries:
        fail("%s: log lists no files" % mode)
    touched = set()
    for p in entries:
        if not p.startswith(after + b"/"):
            fail("%s: log path outside root: %s" % (mode, escaped(p)))
            continue
        rel = p[len(after) + 1:]
        name = escaped(rel)
        if rel in touched:
            fail("%s: logged twice: %s" % (mode, name))
        touched.add(rel)
        src = os.path.join(before, rel)
        if not os.path.isfile(src):
            fail("%s: logged file was not in the tree: %s" % (mode, name))
            continue
        orig = rd(src)
        renamed = p + b"." + ext
        if mode in ("wannacry", "openssl-loop", "7z-qlocker"):
            if os.path.lexists(p):
                fail("%s: original still there: %s" % (mode, name))
            if not os.path.isfile(renamed):
                fail("%s: no %s file for %s" % (mode, escaped(ext), name))
                continue
            res = rd(renamed)
            if mode == "wannacry":
                check_ranges(name, orig, res, [(0, len(orig))])
            elif mode == "openssl-loop":
                if not res.startswith(b"Salted__") or not random_looking(res[16:]) or \
                        len(res) != 16 + (len(orig) // 16 + 1) * 16:
                    fail("%s: not an openssl aes-256-cbc file: %s" % (mode, name))
            else:
                if not res.startswith(b"7z\xbc\xaf\x27\x1c") or (len(res) > 4096 and not random_looking(res[32:])):
                    fail("%s: not an encrypted 7z archive: %s" % (mode, name))
            continue
        if mode == "base64":
            res = rd(p)
            try:
                ct = base64.b64decode(res, validate=True)
            except ValueError:
                fail("base64: not base64: %s" % name)
                continue
            if len(ct) != len(orig):
                fail("base64: decoded size %d != %d: %s" % (len(ct), len(orig), name))
            elif not random_looking(xor(orig, ct)[:4 * MIB]):
                fail("base64: decoded bytes are not ciphertext: %s" % name)
            continue
        ren, ranges = expect(mode, len(orig))
        target = renamed if ren else p
        if ren and os.path.lexists(p):
            fail("%s: not renamed: %s" % (mode, name))
        if not os.path.isfile(target):
            fail("%s: result missing: %s" % (mode, escaped(target)))
            continue
        res = rd(target)
        if mode == "lockfile":
            d = xor(orig, res) if len(res) == len(orig) else b""
            if len(res) != len(orig):
                fail("lockfile: size changed: %s" % name)
                continue
            enc = b"".join(d[i:i + 16] for i in range(0, len(d), 32))
            plain = b"".join(d[i + 16:i + 32] for i in range(0, len(d), 32))
            if plain.count(0) != len(plain):
                fail("lockfile: odd 16-byte pieces changed: %s" % name)
            if not random_looking(enc[:4 * MIB]):
                fail("lockfile: even 16-byte pieces are not ciphertext: %s" % name)
            continue
        check_ranges(name, orig, res, ranges)
    # Everything the log does not name must be untouched.
    for dp, dns, fns in os.walk(before):
        for n in fns:
            src = os.path.join(dp, n)
            rel = os.path.relpath(src, before)
            if rel in touched or os.path.islink(src):
                continue
            dst = os.path.join(after, rel)
            if not os.path.isfile(dst) or rd(dst) != rd(src):
                fail("%s: file not in the log was changed: %s" % (mode, escaped(rel)))
    print("  %s: %d files checked" % (mode, len(touched)))


def notes(after, log):
    names, dirs = set(), set()
    for k, p in read_log(log):
        if k == "note":
            names.add(os.path.basename(p))
            dirs.add(os.path.dirname(p))
    if len(names) != 1:
        return fail("notes: %d note names in one run" % len(names))
    name = names.pop()
    text = None
    for dp, dns, fns in os.walk(os.fsencode(after)):
        if dp not in dirs:
            fail("notes: no note logged for %s" % escaped(dp))
        p = os.path.join(dp, name)
        if not os.path.isfile(p):
            fail("notes: no note in %s" % escaped(dp))
            continue
        text = text or rd(p)
        if rd(p) != text:
            fail("notes: note text differs within a run")
    print("NOTE %s %s" % (escaped(name), zlib.crc32(text or b"")))


def tree(root):
    n = 0
    for dp, dns, fns in os.walk(root):
        if ".git" in dns:
            dns.remove(".git")
        for f in fns:
            p = os.path.join(dp, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            n += 1
            try:
                check_file(p)
            except Exception as e:  # noqa: BLE001 -- any parse error is the finding
                fail("tree: %s: %s" % (escaped(os.fsencode(p)), e))
    print("  tree: %d files valid" % n)


def check_file(p):
    low = p.lower()
    if low.endswith(".gz") or low.endswith(".tgz"):
        with gzip.open(p) as g:
            while g.read(1 << 20):
                pass
    elif low.endswith((".zip", ".docx", ".xlsx")):
        with zipfile.ZipFile(p) as z:
            bad = z.testzip()
            if bad:
                raise ValueError("bad member " + bad)
            if not low.endswith(".zip") and "[Content_Types].xml" not in z.namelist():
                raise ValueError("no [Content_Types].xml")
    elif low.endswith(".png"):
        formats.png_decode(rd(p))
    elif low.endswith(".ppm"):
        formats.ppm_decode(rd(p))
    elif low.endswith((".jpg", ".jpeg")):
        d = rd(p)
        if d[:3] != b"\xff\xd8\xff" or d[-2:] != b"\xff\xd9":
            raise ValueError("not a JPEG")
    elif low.endswith(".pdf"):
        d = rd(p)
        if not d.startswith(b"%PDF-") or b"%%EOF" not in d[-32:]:
            raise ValueError("not a PDF")
    elif low.endswith(".json"):
        json.loads(rd(p))
    elif low.endswith((".db", ".sqlite")):
        con = sqlite3.connect("file:%s?mode=ro" % p, uri=True)
        r = con.execute("PRAGMA integrity_check").fetchone()[0]
        con.close()
        if r != "ok":
            raise ValueError("sqlite: " + r)
    elif low.endswith(".tar"):
        with tarfile.open(p) as t:
            t.getmembers()
    elif low.endswith(".zst"):
        subprocess.run(["zstd", "-q", "-t", p], check=True)
    elif low.endswith(".gpg"):
        if rd(p)[:1] not in (b"\x8c", b"\xc3", b"\x85", b"\x84"):
            raise ValueError("not an OpenPGP packet")


def main():
    cmd = sys.argv[1]
    if cmd == "attack":
        attack(*sys.argv[2:7])
    elif cmd == "notes":
        notes(sys.argv[2], sys.argv[3])
    elif cmd == "tree":
        tree(sys.argv[2])
    elif cmd == "log":
        print(sum(1 for k, _ in read_log(sys.argv[2]) if k == "enc"))
    else:
        sys.exit("check.py: unknown command " + cmd)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
