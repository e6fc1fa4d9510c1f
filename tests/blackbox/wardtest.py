"""wardtest: helpers for black-box tests that run the real ward binary as root against real
filesystems (loop-mounted images made by the test). Each test file counts its checks and
ends with the line "<name>: N passed, N failed"."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

WARD = os.environ.get("WARD_BIN") or os.path.abspath("build/ward")
BUILD = os.environ.get("WARD_BUILD") or os.path.abspath("build")


class Checks:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {detail}" if detail else ""), flush=True)
        return cond

    def done(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


@contextlib.contextmanager
def loopfs(fstype="ext4", size_mb=256):
    """A fresh filesystem of the given type on a loop device, mounted in a temp dir."""
    d = tempfile.mkdtemp(prefix="ward-test-")
    img, mnt = os.path.join(d, "img"), os.path.join(d, "mnt")
    os.mkdir(mnt)
    with open(img, "wb") as f:
        f.truncate(size_mb << 20)
    mkfs = {"ext4": ["mkfs.ext4", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f"],
            "btrfs": ["mkfs.btrfs", "-q", "-f"]}[fstype]
    run(mkfs + [img])
    run(["mount", "-o", "loop", img, mnt])
    try:
        yield mnt
    finally:
        for _ in range(20):
            if subprocess.run(["umount", mnt], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        shutil.rmtree(d, ignore_errors=True)


def wait_for(pred, timeout=15.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Ward:
    """A ward process (trace, run or record) with its stdout/stderr in files."""

    def __init__(self, args, workdir):
        self.out_path = os.path.join(workdir, "ward.out")
        self.err_path = os.path.join(workdir, "ward.err")
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.p = subprocess.Popen([WARD] + args, stdout=self.out, stderr=self.err)
        if not wait_for(lambda: "ready" in self.stderr() or self.p.poll() is not None, 20):
            raise RuntimeError("ward did not become ready: " + self.stderr())
        if self.p.poll() is not None:
            raise RuntimeError("ward exited: " + self.stderr())

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def events(self):
        evs = []
        with open(self.out_path, "rb") as f:
            for line in f:
                if line.strip():
                    o = json.loads(line)
                    if "ward_trace" not in o:
                        evs.append(o)
        return evs

    def stop(self, sig=signal.SIGINT):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.out.close()
        self.err.close()
        return rc


def path_of(ev):
    """The event's path as bytes (exact, from ward.file.path_hex when present)."""
    h = ev.get("ward", {}).get("file", {}).get("path_hex")
    if h:
        return bytes.fromhex(h)
    return ev.get("file", {}).get("path", "").encode()


def find(evs, action, path):
    p = path.encode() if isinstance(path, str) else path
    return [e for e in evs if e["event"]["action"] == action and path_of(e) == p]
