"""The CLI, config and trace files, black-box: bad input gets an error naming the problem;
`ward record` then `ward replay` gives back the same events."""
import json
import os
import signal
import subprocess
import time
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from wardtest import WARD, Checks, Ward, loopfs, path_of, wait_for  # noqa: E402

c = Checks("blackbox-cli")
tmp = tempfile.mkdtemp()


def ward(*args, **kw):
    return subprocess.run([WARD, *args], capture_output=True, text=True, timeout=30, **kw)


def conf(text):
    p = os.path.join(tmp, "ward.conf")
    with open(p, "w") as f:
        f.write(text)
    return p


# bad command lines: exit 2 and a message naming the problem
for args, want in [
    (["frobnicate"], 'unknown command "frobnicate"'),
    (["run"], "nothing to watch"),
    (["run", "--watch", "/nonexistent/x"], "/nonexistent/x: No such file"),
    (["run", "--watch", "/etc/hostname"], "not a directory"),
    (["run", "--watch", tmp, "--mode", "maybe"], "--mode must be protect or monitor"),
    (["trace", "--watch", tmp, "--bogus"], "unknown or incomplete option --bogus"),
    (["trace", "--watch"], "unknown or incomplete option"),
    (["run", "--watch", tmp, "extra"], "run takes no arguments"),
    (["replay"], "usage: ward replay FILE"),
]:
    r = ward(*args)
    c.check(r.returncode in (1, 2) and want in r.stderr, f"ward {' '.join(args)}", r.stderr.strip())

# config files: each error names the file, the line and the problem
for text, want in [
    ("[ward]\nwatch = /tmp\nfrob = 1\n", ":3: unknown key \"frob\" in [ward]"),
    ("[ward]\nmode = fast\n", ":2: mode must be protect or monitor"),
    ("[nosuch]\nx = 1\n", ":2: unknown section [nosuch]"),
    ("watch = /tmp\n", ":1: key \"watch\" is outside any section"),
    ("[ward]\nthis line is not a key\n", ":2: syntax error"),
    ("[sensor]\nebpf = perhaps\n", ":2: ebpf must be yes or no"),
    ("[sensor]\nprocess_grace = -5\n", ":2: process_grace must be a positive duration"),
    ("[ward]\nstate_dir = relative/dir\n", ":2: state_dir must be an absolute path"),
]:
    p = conf(text)
    r = ward("check-config", "--config", p)
    c.check(r.returncode != 0 and (p + want) in r.stderr, f"config error {want!r}", r.stderr.strip())
r = ward("check-config", "--config", os.path.join(tmp, "missing.conf"))
c.check(r.returncode != 0 and "missing.conf: No such file" in r.stderr, "missing config file", r.stderr)
p = conf(f"# a comment\n[ward]\nwatch = {tmp}\nmode = monitor\n[sensor]\nprocess_grace = 2m\n")
r = ward("check-config", "--config", p)
c.check(r.returncode == 0 and "monitor mode" in r.stdout, "a good config validates", r.stderr + r.stdout)

# record, then replay: the same events come back
with loopfs("ext4", 128) as mnt:
    w = os.path.join(mnt, "w")
    os.mkdir(w)
    trace = os.path.join(tmp, "t.trace")
    rec = Ward(["record", trace, "--watch", w], tmp)
    names = ["plain", "with space", "new\nline"]
    for n in names:
        subprocess.run(["sh", "-c", 'printf data > "$1"; mv "$1" "$1.x"', "sh", os.path.join(w, n)], check=True)
    with open(os.path.join(w, "raw").encode() + b"\xe9", "w") as f:
        f.write("x")
    wait_for(lambda: os.path.getsize(trace) > 0 and open(trace, "rb").read().count(b'"rename"') >= 3, 10)
    c.check(rec.stop() == 0, "record exits 0")
    recorded = [json.loads(line) for line in open(trace, "rb") if line.strip()]
    c.check("ward_trace" in recorded[0] and recorded[0]["ward_trace"]["version"] == 1, "trace header v1")
    recorded = recorded[1:]
    r = subprocess.run([WARD, "replay", trace], capture_output=True, timeout=30)
    c.check(r.returncode == 0, "replay exits 0", r.stderr.decode())
    replayed = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    c.check(len(replayed) == len(recorded) and len(recorded) >= 12, "replay gives every event",
            f"{len(replayed)} vs {len(recorded)}")
    same = all(path_of(a) == path_of(b) and a["event"]["action"] == b["event"]["action"]
               and a["process"]["pid"] == b["process"]["pid"]
               and a["process"].get("executable") == b["process"].get("executable")
               and a["process"].get("args") == b["process"].get("args")
               and a.get("ward", {}).get("file", {}).get("old_path") == b.get("ward", {}).get("file", {}).get("old_path")
               and a["@timestamp"] == b["@timestamp"]
               for a, b in zip(recorded, replayed))
    c.check(same, "replayed events equal the recorded ones")
    c.check(any(path_of(e) == os.path.join(w, "raw").encode() + b"\xe9" for e in replayed),
            "non-UTF-8 path survives record/replay byte for byte")

    # damaged traces: the error names the line and the problem, and nothing is half-read
    lines = open(trace, "rb").read().split(b"\n")
    for mutate, want in [
        (lambda L: [b'{"nope":1}'] + L[1:], ":1: not a ward trace"),
        (lambda L: [b'{"ward_trace":{"version":99}}'] + L[1:], ":1: trace version 99 is not supported"),
        (lambda L: L[:2] + [b'{"event":{"action":"create"}'] + L[2:], ":3: invalid JSON"),
        (lambda L: L[:2] + [b'{"event":{"action":"explode"},"@timestamp":"2026-01-01T00:00:00Z"}'] + L[2:],
         ':3: field event.action: unknown action "explode"'),
        (lambda L: L[:3] + [b'{"event":{"action":"create"},"@timestamp":"2026-01-01T00:00:00Z","file":{"path":"/x"}}'] + L[3:],
         ":4: missing field process.pid"),
        (lambda L: L[:2] + [b'{"event":{"action":"create"},"@timestamp":"yesterday"}'], ":3: field @timestamp"),
        (lambda L: L[:2] + [b'[1,2]'], ":3: a line must be a JSON object"),
    ]:
        bad = os.path.join(tmp, "bad.trace")
        with open(bad, "wb") as f:
            f.write(b"\n".join(mutate(list(lines))))
        r = subprocess.run([WARD, "replay", bad], capture_output=True, text=True, timeout=30)
        c.check(r.returncode == 1 and (bad + want) in r.stderr, f"damaged trace {want!r}", r.stderr.strip())
    r = subprocess.run([WARD, "replay", os.path.join(tmp, "none.trace")], capture_output=True, text=True)
    c.check(r.returncode == 1 and "none.trace: No such file" in r.stderr, "missing trace", r.stderr)


# --- SIGHUP re-reads the configuration file without dropping events ---
# A writer creates files the whole time while ward is sent SIGHUP with good configurations,
# one with an error (kept out) and one changing a key that needs a restart (named). Every
# creation must still be seen, the error named, and the last configuration (monitor mode)
# in force: an attack afterwards is reported, not stopped.
RANSIM = os.path.join(os.path.dirname(WARD), "helpers", "ransim")
with loopfs("ext4", 256) as mnt:
    share = os.path.join(mnt, "share")
    os.makedirs(share)
    for i in range(12):
        with open(os.path.join(share, f"doc{i}.txt"), "w") as f:
            f.write(("patient record %d\n" % i) * 400)
    state = os.path.join(tmp, "st-reload")
    cpath = os.path.join(tmp, "reload.conf")
    protect = "[ward]\nmode = protect\n[canary]\nenabled = no\n"
    monitor = "[ward]\nmode = monitor\n[canary]\nenabled = no\n[detect]\nthreshold = 120\n"
    with open(cpath, "w") as f:
        f.write(protect)
    w = Ward(["run", "--watch", share, "--state", state, "--config", cpath], tmp)
    wdir = os.path.join(share, "w")
    os.makedirs(wdir)
    N = 3000
    writer = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\n"
                               f"for i in range({N}):\n"
                               f"    open('{wdir}/f%d' % i, 'w').write('x')\n"
                               "    if i % 100 == 0: time.sleep(0.02)\n"])
    texts = [monitor, "[ward]\nmode = maybe\n", protect, "[vault]\nmax_size = 64M\n" + protect, monitor]
    k = 0
    while writer.poll() is None or k < len(texts):
        with open(cpath, "w") as f:
            f.write(texts[k % len(texts)])
        w.p.send_signal(signal.SIGHUP)
        k += 1
        time.sleep(0.05)
    writer.wait()
    with open(cpath, "w") as f:
        f.write(monitor)
    w.p.send_signal(signal.SIGHUP)
    want = N  # (the directory is a mkdir event)
    seen = lambda: json.loads(ward("status", "--state", state, "--json").stdout or "{}")  # noqa: E731
    wait_for(lambda: seen().get("events", {}).get("create", 0) >= want, 20)
    st = seen()
    c.check(st.get("events", {}).get("create") == want, f"SIGHUP x{k + 1} while writing: every creation seen",
            f"{st.get('events', {}).get('create')} of {want}")
    c.check(st.get("overflows") == 0, "no queue overflow", str(st.get("overflows")))
    log = w.stderr()
    c.check("mode must be protect or monitor" in log and "the running configuration is kept" in log,
            "a configuration with an error is named and kept out", log[-400:])
    c.check("[vault]" in log and "next restart" in log, "a key that needs a restart is named", log[-400:])
    wait_for(lambda: seen().get("mode") == "monitor", 10)
    c.check(seen().get("mode") == "monitor", "the last configuration is in force: monitor mode",
            str(seen().get("mode")))
    r = subprocess.run([RANSIM, "--mode", "header", "--root", share, "--limit", "8"], capture_output=True,
                       timeout=60)
    c.check(r.returncode == 0, "after the reload an attack is reported, not stopped", str(r.returncode))
    incs = wait_for(lambda: [x for x in ward("incidents", "--state", state, "--json").stdout.splitlines()
                             if x.strip()], 10)
    c.check(bool(incs) and json.loads(incs[0]).get("status") == "reported", "the incident is reported",
            str(incs)[:300])
    c.check(w.stop() == 0, "ward stops after the reloads")

c.done()
