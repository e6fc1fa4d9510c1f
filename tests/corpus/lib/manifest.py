"""Recursive, byte-exact manifest of a tree. See ../manifest.sh."""
import hashlib
import os
import stat
import sys


def esc(b):
    out = []
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


ZEROS = bytes(1 << 20)


def sha256_file(path):
    """Holes of sparse files (VM disks) are hashed as zeros without reading them: same digest,
    a fraction of the time for a 2 GiB disk with a few MiB of data."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole up to EOF (or no SEEK_DATA support: read)
                data = size if hasattr(os, "SEEK_DATA") else pos
            while pos < data:  # hole
                n = min(data - pos, len(ZEROS))
                h.update(ZEROS[:n] if n < len(ZEROS) else ZEROS)
                pos += n
            if pos >= size:
                break
            hole = os.lseek(fd, pos, os.SEEK_HOLE)
            os.lseek(fd, pos, os.SEEK_SET)
            while pos < hole:
                n = f.readinto(view[:min(len(buf), hole - pos)])
                if not n:
                    return h.hexdigest() + "-short"  # shrank under us
                h.update(view[:n])
                pos += n
    return h.hexdigest()


def entries(root):
    root = os.fsencode(root)
    for dp, dns, fns in os.walk(root, followlinks=False):
        for n in dns + fns:
            p = os.path.join(dp, n)
            yield os.path.relpath(p, root), p


def main():
    lines = []
    for rel, p in entries(sys.argv[1]):
        st = os.lstat(p)
        m = st.st_mode
        if stat.S_ISREG(m):
            t, size, h = "f", st.st_size, sha256_file(p)
        elif stat.S_ISDIR(m):
            t, size, h = "d", 0, "-"
        elif stat.S_ISLNK(m):
            target = os.readlink(p)
            t, size, h = "l", len(target), hashlib.sha256(target).hexdigest()
        else:
            t, size, h = "o", 0, "-"
        lines.append((rel, "%s %04o %d %s %s" % (t, stat.S_IMODE(m), size, h, esc(rel))))
    lines.sort()
    out = sys.stdout
    for _, line in lines:
        out.write(line + "\n")


if __name__ == "__main__":
    main()
