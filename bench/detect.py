"""bench/detect: every attack and every ordinary workload of the corpus against a real ward
(`ward run`, protect mode) on a fresh loop-mounted ext4 holding a fresh small data tree
(tests/corpus/mkdata.sh ROOT small, made once and copied byte for byte into each new
filesystem). Prints one table per configuration, first with canaries (the default), then
with `[canary] enabled = no`, since detection must not rest on decoys alone:

  attacks   detected (an incident), stopped (killed by ward, or no file started after the
            stop), files the attack modified before the stop (its --log lines: all of them if
            ward killed it, else those up to the incident's stopped_ns), lines logged after
            stopped_ns, originals damaged (counted on the tree: files whose bytes or name
            changed) and new files (encrypted copies, notes), time from its first logged
            write to the stop, the indicators
  workloads false alarms (any incident is one), run time

and the medians and worst cases. Attacks: every ransim mode (slow bounded with --delay-ms
and --limit), notes alone and with an encrypting mode, the shell attacks, and the attacks
of tests/corpus/independent/. Run as root:

  python3 bench/detect.py [BUILD_DIR] [--only NAME,...] [--canaries both|yes|no] [--keep]

Scratch space: $BENCH_TMP if set, else a new directory under /tmp (removed unless --keep).
About 2 minutes on a 2-vCPU VM (--vault no: [vault] enabled = no, to measure detection
without the copy-before-write guard slowing attackers down)."""
import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO, "tests", "corpus")

ap = argparse.ArgumentParser(description="detection benchmark (as root)")
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--only", default="", help="comma-separated row names")
ap.add_argument("--canaries", default="both", choices=["both", "yes", "no"])
ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
ap.add_argument("--vault", default="default", choices=["default", "no"],
                help="no: [vault] enabled = no (detection alone, attackers not slowed by saves)")
ap.add_argument("--json", default="", help="also write the rows as JSON to this file")
args = ap.parse_args()
BUILD = os.path.abspath(args.build)
WARD, RANSIM = f"{BUILD}/ward", f"{BUILD}/helpers/ransim"

if os.geteuid() != 0:
    sys.exit("bench/detect: run as root (fanotify, loop devices)")
for f in (WARD, RANSIM):
    if not os.access(f, os.X_OK):
        sys.exit(f"bench/detect: {f} missing: run make first")

TMP = os.environ.get("BENCH_TMP") or tempfile.mkdtemp(prefix="ward-bench-detect-")
os.makedirs(TMP, exist_ok=True)
IND = os.path.join(CORPUS, "independent")


def ransim(mode, *extra):
    return lambda root, log, seed: [RANSIM, "--mode", mode, "--root", root, "--log", log,
                                    "--seed", str(seed), *extra]


def script(path):
    return lambda root, log, seed: [path, root, log]


# (name, command builder); every attack writes `<ns> <pid> enc|note <path>` lines to its log
ATTACKS = [
    ("babuk-esxi", ransim("babuk-esxi")),
    ("babuk-nas", ransim("babuk-nas")),
    ("wannacry", ransim("wannacry")),
    ("header", ransim("header")),
    ("lockfile", ransim("lockfile")),
    ("esxiargs", ransim("esxiargs")),
    ("base64", ransim("base64")),
    ("slow", ransim("slow", "--delay-ms", "150", "--limit", "25")),
    ("fork-per-file", ransim("fork-per-file")),
    ("threads", ransim("threads")),
    ("mmap", ransim("mmap")),
    ("otrunc", ransim("otrunc")),
    ("notes", ransim("notes")),
    ("esxiargs+notes", ransim("esxiargs", "--notes")),
    ("sh:openssl-loop", script(os.path.join(CORPUS, "attacks", "openssl-loop.sh"))),
    ("sh:7z-qlocker", script(os.path.join(CORPUS, "attacks", "7z-qlocker.sh"))),
    ("ind:xor-recent", script(os.path.join(IND, "xor-recent.py"))),
    ("ind:chacha-bfs", script(os.path.join(TMP, "chacha-bfs"))),
    ("ind:chacha-tmpmv", script(os.path.join(IND, "chacha-tmpmv.sh"))),
    ("ind:dd-head", script(os.path.join(IND, "dd-head.sh"))),
]
WORK = [("work:" + f[:-3], os.path.join(CORPUS, "work", f))
        for f in sorted(os.listdir(os.path.join(CORPUS, "work"))) if f.endswith(".sh")]
ONLY = set(filter(None, args.only.split(",")))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def prepare():
    sh(["cc", "-O2", "-o", os.path.join(TMP, "chacha-bfs"), os.path.join(IND, "chacha-bfs.c"), "-lcrypto"])
    tree = os.path.join(TMP, "tree")
    if not os.path.isdir(tree):
        sh([os.path.join(CORPUS, "mkdata.sh"), tree, "small"])
    extra = "[vault]\nenabled = no\n" if args.vault == "no" else ""
    for name, text in (("canary-yes.conf", "[canary]\nenabled = yes\n" + extra),
                       ("canary-no.conf", "[canary]\nenabled = no\n" + extra)):
        with open(os.path.join(TMP, name), "w") as f:
            f.write(text)
    return tree


def read_log(path):
    """The attack's log: [(ns, kind, path)]."""
    out = []
    try:
        with open(path, "rb") as f:
            for line in f:
                parts = line.rstrip(b"\n").split(b" ", 3)
                if len(parts) == 4 and parts[0].isdigit():
                    out.append((int(parts[0]), parts[2].decode(), parts[3]))
    except FileNotFoundError:
        pass
    return out


class Run:
    """One fresh filesystem and tree, one ward, one workload."""

    def __init__(self, idx, tree, conf):
        self.dir = os.path.join(TMP, f"run-{idx}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.img, self.mnt = f"{self.dir}/img", f"{self.dir}/mnt"
        self.state = f"{self.dir}/state"
        os.mkdir(self.mnt)
        with open(self.img, "wb") as f:
            f.truncate(768 << 20)
        sh(["mkfs.ext4", "-q", "-F", self.img])
        sh(["mount", "-o", "loop", self.img, self.mnt])
        self.root = f"{self.mnt}/share"
        sh(["cp", "-a", "--sparse=always", tree, self.root])
        self.err = open(f"{self.dir}/ward.err", "wb")
        self.ward = subprocess.Popen([WARD, "run", "--watch", self.root, "--state", self.state,
                                      "--config", conf], stdout=subprocess.DEVNULL, stderr=self.err)
        t0 = time.time()
        while True:
            with open(f"{self.dir}/ward.err", errors="replace") as f:
                text = f.read()
            if "ready" in text:
                break
            if self.ward.poll() is not None or time.time() - t0 > 30:
                self.close()
                raise RuntimeError("ward did not start: " + text[-2000:])
            time.sleep(0.05)

    def work(self, argv, timeout):
        out = open(f"{self.dir}/workload.out", "wb")
        t0 = time.time()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
            rc = "timeout"
        out.close()
        return rc, time.time() - t0

    def settle(self):
        """Waits until ward has read everything the workload caused."""
        last, same = None, 0
        for _ in range(100):
            r = subprocess.run([WARD, "status", "--state", self.state, "--json"], capture_output=True, text=True)
            try:
                st = json.loads(r.stdout)
                cur = st["events"]["total"]
            except (ValueError, KeyError):
                cur = None
            same = same + 1 if cur == last else 0
            last = cur
            if same >= 2:
                return st
            time.sleep(0.1)
        return {}

    def incidents(self):
        r = subprocess.run([WARD, "incidents", "--state", self.state, "--json"], capture_output=True, text=True)
        out = []
        for line in r.stdout.splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def close(self):
        if self.ward.poll() is None:
            self.ward.send_signal(signal.SIGINT)
            try:
                self.ward.wait(20)
            except subprocess.TimeoutExpired:
                self.ward.kill()
                self.ward.wait()
        self.err.close()
        for _ in range(30):
            if subprocess.run(["umount", self.mnt], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        if os.path.exists(self.img):
            os.unlink(self.img)


def indicators(inc):
    seen = []
    for e in inc.get("evidence", []):
        if e.get("indicator") not in seen:
            seen.append(e.get("indicator"))
    return seen


def snapshot(root):
    """path -> sha256 of every file under root (ward's own directories left out)."""
    out = {}
    for dp, dns, fns in os.walk(root):
        dns[:] = [d for d in dns if not d.startswith(".ward")]
        for f in fns:
            p = os.path.join(dp, f)
            try:
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha256(fh.read()).hexdigest()
            except OSError:
                pass
    return out


def run_attack(idx, tree, conf, name, build):
    r = Run(idx, tree, conf)
    try:
        log = f"{r.dir}/attack.log"
        before = snapshot(r.root)
        rc, secs = r.work(build(r.root, log, 1000 + idx), 120)
        st = r.settle()
        incs = r.incidents()
        after = snapshot(r.root)
    finally:
        r.close()
    # what the attack really did to the tree: originals whose bytes changed or whose name is
    # gone (encrypted, renamed, deleted), and new files (encrypted copies, notes)
    damaged = sum(1 for p, h in before.items() if after.get(p) != h)
    created = sum(1 for p in after if p not in before)
    lines = read_log(log)
    row = {"name": name, "kind": "attack", "rc": rc, "logged": len(lines), "incidents": len(incs),
           "damaged": damaged, "created": created,
           "overflows": st.get("overflows", 0), "secs": secs}
    if incs:
        # the stop that ended the attack: with several incidents (a child, then its parent)
        # the last one; files logged before it all count
        inc = max(incs, key=lambda i: i.get("stopped_ns") or i.get("detected_ns") or 0)
        stop = inc.get("stopped_ns") or 0
        first = lines[0][0] if lines else 0
        row.update(detected=True, status=inc.get("status"), level=inc.get("level"),
                   indicators=indicators(inc), score=inc.get("score"))
        if stop:
            after = sum(1 for ln in lines if ln[0] > stop)
            # killed: whatever it logged, it did before it died (a tree is stopped process
            # by process, so a child may log one more line after the first SIGSTOP)
            row["before"] = len(lines) if rc == -9 else len(lines) - after
            row["after"] = after
            row["ms"] = (stop - first) / 1e6 if first else None
        else:  # reported, nothing stopped
            row.update(before=len(lines), after=0, ms=None)
    else:
        row.update(detected=False, before=len(lines), after=0, ms=None, indicators=[], level="-")
    row["stopped"] = row["detected"] and row.get("ms") is not None and (rc == -9 or row["after"] == 0)
    return row


def run_work(idx, tree, conf, name, path):
    r = Run(idx, tree, conf)
    try:
        rc, secs = r.work([path, r.root], 300)
        st = r.settle()
        incs = r.incidents()
    finally:
        r.close()
    return {"name": name, "kind": "work", "rc": rc, "secs": secs, "incidents": len(incs),
            "overflows": st.get("overflows", 0),
            "indicators": indicators(incs[0]) if incs else [],
            "paths": [e.get("path", "")[-60:] for e in incs[0].get("evidence", [])[:4]] if incs else []}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(title, rows):
    print(f"\n== {title}")
    print(f"{'attack':<18} {'detected':>8} {'stopped':>7} {'files':>5} {'after':>5} {'logged':>6} "
          f"{'damaged':>7} {'new':>4} {'ms':>8} {'inc':>3}  level       indicators")
    att = [r for r in rows if r["kind"] == "attack"]
    for r in att:
        print(f"{r['name']:<18} {'yes' if r['detected'] else 'NO':>8} {'yes' if r['stopped'] else 'no':>7} "
              f"{r['before']:>5} {r['after']:>5} {r['logged']:>6} {r['damaged']:>7} {r['created']:>4} "
              f"{fmt(r.get('ms'), '8.1f')} {r['incidents']:>3}  "
              f"{(r.get('level') or '-'):<11} {','.join(r.get('indicators', []))[:90]}")
    print(f"\n{'workload':<24} {'false alarms':>12} {'secs':>6}  {'exit':>4}  indicators")
    work = [r for r in rows if r["kind"] == "work"]
    for r in work:
        print(f"{r['name']:<24} {r['incidents']:>12} {r['secs']:>6.1f}  {str(r['rc']):>4}  "
              f"{','.join(r['indicators'])} {' '.join(r['paths'])}")
    if att:
        files = [r["before"] for r in att]
        ms = [r["ms"] for r in att if r.get("ms") is not None]
        det = sum(r["detected"] for r in att)
        stopped = sum(r["stopped"] for r in att)
        dmg = [r["damaged"] for r in att]
        print(f"\nattacks: {det}/{len(att)} detected, {stopped}/{len(att)} stopped; files modified before "
              f"the stop: median {statistics.median(files):g}, worst {max(files)}; time to stop: "
              + (f"median {statistics.median(ms):.1f} ms, worst {max(ms):.1f} ms" if ms else "-"))
        print(f"originals damaged (bytes or name changed, counted on the tree): median {statistics.median(dmg):g}, "
              f"worst {max(dmg)}")
    if work:
        fa = sum(1 for r in work if r["incidents"])
        broke = [r["name"] for r in work if r["rc"] != 0]
        print(f"workloads: {fa}/{len(work)} with a false alarm, {len(broke)}/{len(work)} failed under ward"
              + (f" ({', '.join(broke)}: non-zero exit)" if broke else ""))
    ovf = sum(r.get("overflows", 0) or 0 for r in rows)
    if ovf:
        print(f"(kernel queue overflows during the runs: {ovf})")


def main():
    t0 = time.time()
    tree = prepare()
    confs = {"both": ["yes", "no"], "yes": ["yes"], "no": ["no"]}[args.canaries]
    allrows = {}
    idx = 0
    for c in confs:
        conf = os.path.join(TMP, f"canary-{c}.conf")
        rows = []
        for name, build in ATTACKS:
            if ONLY and name not in ONLY:
                continue
            idx += 1
            rows.append(run_attack(idx, tree, conf, name, build))
            print(".", end="", flush=True)
        for name, path in WORK:
            if ONLY and name not in ONLY:
                continue
            idx += 1
            rows.append(run_work(idx, tree, conf, name, path))
            print(".", end="", flush=True)
        allrows[c] = rows
        table(f"canaries {'on (default)' if c == 'yes' else 'off ([canary] enabled = no)'}"
              + (", vault off" if args.vault == "no" else ""), rows)
    print(f"\nbench/detect: {time.time() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(allrows, f, indent=1)


try:
    main()
finally:
    if not args.keep and not os.environ.get("BENCH_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)
