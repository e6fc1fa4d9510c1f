"""Detection and response, black-box: the real ward binary in protect and monitor mode on a
loop-mounted ext4 holding the corpus data tree, real attacks (ransim modes and an attack
written independently of it) and ordinary work. Each scenario runs its own ward on a fresh
filesystem, so that nothing one scenario scores can reach the next.

Checks: attackers are killed, with an incident that names indicators and files and an ECS
alert line; monitor mode reports and stops nothing; ordinary work raises nothing; `ward
allow ID` after `[response] action = stop` resumes the process (it finishes) and allow-lists
its executable; `ward replay --detect` over a recorded attack trace reports a detection.
Ends with "blackbox-detect: N passed, N failed"."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from wardtest import BUILD, WARD, Checks, Ward, loopfs, run, wait_for  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(REPO, "tests", "corpus")
RANSIM = os.path.join(BUILD, "helpers", "ransim")

c = Checks("blackbox-detect")
TMP = tempfile.mkdtemp(prefix="ward-detect-")
TREE = os.path.join(TMP, "tree")
run([os.path.join(CORPUS, "mkdata.sh"), TREE, "small", "3"])
shutil.rmtree(os.path.join(TREE, "vm"), ignore_errors=True)  # sparse disks: slow, not needed here


def config(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


NO_CANARY = config("nocanary.conf", "[canary]\nenabled = no\n")
CANARY = config("canary.conf", "[canary]\nenabled = yes\n")
KEEP_STOPPED = config("stop.conf", "[canary]\nenabled = no\n[response]\naction = stop\n")


class Scenario:
    """A fresh filesystem with the data tree and a ward watching it."""

    def __init__(self, mnt, conf, mode=None, cmd="run"):
        self.root = os.path.join(mnt, "share")
        run(["cp", "-a", TREE, self.root])
        self.dir = tempfile.mkdtemp(dir=TMP)
        self.state = os.path.join(self.dir, "state")
        args = [cmd, "--watch", self.root, "--state", self.state, "--config", conf]
        if mode:
            args += ["--mode", mode]
        self.ward = Ward(args, self.dir)

    def incidents(self):
        r = subprocess.run([WARD, "incidents", "--state", self.state, "--json"], capture_output=True, text=True)
        return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]

    def settle(self):
        """Until ward has read what the workload did (its event count stops moving)."""
        last = None
        for _ in range(50):
            r = subprocess.run([WARD, "status", "--state", self.state, "--json"], capture_output=True, text=True)
            try:
                cur = json.loads(r.stdout)["events"]["total"]
            except (ValueError, KeyError):
                cur = None
            if cur is not None and cur == last:
                return
            last = cur
            time.sleep(0.15)

    def alerts(self):
        path = os.path.join(self.state, "alerts.json")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [x for x in f.read().splitlines() if x.strip()]

    def stop(self):
        return self.ward.stop()


def log_lines(path):
    try:
        with open(path, "rb") as f:
            return [x for x in f.read().splitlines() if x.strip()]
    except FileNotFoundError:
        return []


def attack(name, argv, conf, want_indicators):
    """An attack in protect mode: killed, one incident with evidence, an ECS alert."""
    with loopfs("ext4", 512) as mnt:
        s = Scenario(mnt, conf)
        log = os.path.join(s.dir, "attack.log")
        p = subprocess.Popen(argv(s.root, log), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        s.settle()
        incs = s.incidents()
        alerts = s.alerts()
        s.stop()
    lines = log_lines(log)
    c.check(rc == -9, f"{name}: the attacker was killed", f"exit {rc}")
    c.check(len(incs) >= 1, f"{name}: an incident")
    if incs:
        inc = incs[0]
        inds = {e.get("indicator") for e in inc.get("evidence", [])}
        c.check(bool(inds & set(want_indicators)), f"{name}: evidence names indicators {want_indicators}", str(inds))
        c.check(all(e.get("path") for e in inc.get("evidence", [])), f"{name}: every indicator names its file")
        c.check(len(inc.get("files", [])) >= 1, f"{name}: the incident lists the files touched")
        c.check(inc.get("status") == "killed" and inc.get("stopped_ns", 0) > 0, f"{name}: status killed",
                str(inc.get("status")))
        c.check(p.pid in inc.get("stopped_pids", []) or inc.get("process", {}).get("pid") == p.pid,
                f"{name}: the attacker is the actor stopped", str(inc.get("stopped_pids")))
    c.check(len(lines) <= 10, f"{name}: stopped within 10 files", f"{len(lines)} files")
    ok = False
    for a in alerts:
        try:
            o = json.loads(a)
        except ValueError:
            continue
        ok |= o.get("event", {}).get("kind") == "alert"
    c.check(ok, f"{name}: an ECS alert line with event.kind alert in alerts.json", str(alerts[:1])[:200])


def ransim(mode, *extra):
    return lambda root, log: [RANSIM, "--mode", mode, "--root", root, "--log", log, "--seed", "5", *extra]


# --- attacks: two with canaries off, one independent attack with the default canaries ---
attack("babuk-esxi (in place, canaries off)", ransim("babuk-esxi"), NO_CANARY,
       ["content.encrypted_in_place", "content.partial"])
attack("wannacry (new file, original deleted, canaries off)", ransim("wannacry"), NO_CANARY,
       ["delete.original", "content.encrypted_new"])
attack("xor-recent (independent, python)",
       lambda root, log: [sys.executable, os.path.join(CORPUS, "independent", "xor-recent.py"), root, log],
       CANARY, ["content.encrypted_in_place", "canary", "format.broken"])

# --- monitor mode: reported, nothing stopped ---
with loopfs("ext4", 512) as mnt:
    s = Scenario(mnt, NO_CANARY, mode="monitor")
    log = os.path.join(s.dir, "attack.log")
    p = subprocess.run(ransim("header", "--limit", "12")(s.root, log), capture_output=True, text=True, timeout=60)
    s.settle()
    incs = s.incidents()
    s.stop()
    c.check(p.returncode == 0, "monitor: the attacker ran to its end", f"exit {p.returncode}")
    c.check(len(log_lines(log)) == 12, "monitor: all 12 files were modified", str(len(log_lines(log))))
    c.check(len(incs) >= 1 and incs[0].get("status") == "reported", "monitor: the incident is reported",
            str([i.get("status") for i in incs]))
    c.check(all(not i.get("stopped_pids") for i in incs), "monitor: nothing stopped")

# --- ordinary work raises nothing ---
# (gzip and tar also prove the vault changes nothing they can see: gzip refuses a file with
# a second hard link, tar complains when a file's ctime moves while it reads it)
for work in ("rsync-copy.sh", "sed-inplace.sh", "logrotate-gzip.sh", "archive-tree.sh"):
    with loopfs("ext4", 512) as mnt:
        s = Scenario(mnt, CANARY)
        p = subprocess.run([os.path.join(CORPUS, "work", work), s.root], capture_output=True, text=True, timeout=120)
        s.settle()
        incs = s.incidents()
        s.stop()
        c.check(p.returncode == 0, f"{work}: ran", p.stderr[-300:])
        c.check(incs == [], f"{work}: no incident", str([i.get("evidence", [])[:2] for i in incs])[:400])

# --- a suspect is paused while its queued events are judged, then resumed ---
# One file destroyed is below the threshold: the writer is paused (SIGSTOP) until ward has
# read everything it did, then resumed, and it finishes as if nothing happened. setsid: a
# process with a controlling terminal is never paused (job control would notice).
with loopfs("ext4", 512) as mnt:
    s = Scenario(mnt, NO_CANARY)
    victim = next(os.path.join(dp, f) for dp, _, fs in sorted(os.walk(s.root)) for f in sorted(fs)
                  if f.endswith(".pdf"))
    done = os.path.join(s.dir, "finished")
    script = (f"import os, time\nf = open({victim!r}, 'r+b')\nf.write(os.urandom(os.path.getsize({victim!r})))\n"
              f"f.close()\ntime.sleep(1.5)\nopen({done!r}, 'w').write('ok')\n")
    p = subprocess.run(["setsid", "-w", sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    s.settle()
    st = json.loads(subprocess.run([WARD, "status", "--state", s.state, "--json"], capture_output=True,
                                   text=True).stdout or "{}")
    incs = s.incidents()
    s.stop()
    c.check(p.returncode == 0 and os.path.exists(done), "pause: the writer of one destroyed file finished",
            f"exit {p.returncode} {p.stderr[-200:]}")
    c.check(st.get("suspects_paused", 0) >= 1, "pause: it was paused", str(st.get("suspects_paused")))
    c.check(st.get("suspects_resumed", 0) == st.get("suspects_paused", -1), "pause: every pause was resumed",
            f"{st.get('suspects_resumed')} of {st.get('suspects_paused')}")
    c.check(incs == [], "pause: one file is no incident", str(len(incs)))

# --- action = stop, then ward allow: resumed, finishes, allow-listed (path and sha256) ---
# A copy of the attacker, so that it can be changed afterwards: the allow-list entry is
# pinned to the program's content, and the same path with other content is stopped again.
ALLOWED = os.path.join(TMP, "bin", "ransim")
os.makedirs(os.path.dirname(ALLOWED), exist_ok=True)
shutil.copy2(RANSIM, ALLOWED)
with loopfs("ext4", 512) as mnt:
    s = Scenario(mnt, KEEP_STOPPED)
    log = os.path.join(s.dir, "attack.log")
    argv = [ALLOWED] + ransim("header", "--limit", "8")(s.root, log)[1:]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    incs = wait_for(lambda: s.incidents(), 20)
    stat = ""
    if incs:
        stat = wait_for(lambda: open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T" and "T", 5)
    c.check(bool(incs) and incs[0].get("status") == "stopped", "stop: incident kept stopped",
            str([i.get("status") for i in incs]))
    c.check(stat == "T" and p.poll() is None, "stop: the attacker is stopped (state T), not killed")
    if incs:
        r = subprocess.run([WARD, "allow", incs[0]["id"], "--state", s.state], capture_output=True, text=True)
        c.check(r.returncode == 0 and "resumed 1" in r.stdout, "allow: resumed the process", r.stdout + r.stderr)
    try:
        rc = p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    c.check(rc == 0, "allow: the resumed process finished", f"exit {rc}")
    c.check(len(log_lines(log)) == 8, "allow: it did all its files", str(len(log_lines(log))))
    s.settle()
    after = s.incidents()
    c.check(any(i.get("status") == "allowed" for i in after), "allow: incident marked allowed",
            str([i.get("status") for i in after]))
    c.check(len(after) == 1, "allow: no new incident once allow-listed", str(len(after)))
    allow_list = os.path.join(s.state, "allow.list")
    listed = open(allow_list).read() if os.path.exists(allow_list) else ""
    with open(ALLOWED, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    c.check(f"{ALLOWED} sha256:{digest}" in listed, "allow: the executable is allow-listed with its sha256", listed)
    # the same path, other content (one byte appended: the program still runs)
    with open(ALLOWED, "ab") as f:
        f.write(b"\0")
    log2 = os.path.join(s.dir, "attack2.log")
    p = subprocess.Popen([ALLOWED] + ransim("babuk-esxi", "--limit", "8")(s.root, log2)[1:] + ["--seed", "11"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    incs = wait_for(lambda: len(s.incidents()) >= 2 and s.incidents(), 20) or []
    c.check(len(incs) == 2 and incs[-1].get("status") == "stopped",
            "allow: a changed program at the allowed path is stopped again", str([i.get("status") for i in incs]))
    p.kill()
    p.wait()
    s.stop()

# --- record an attack, replay it through the detector ---
with loopfs("ext4", 512) as mnt:
    trace = os.path.join(TMP, "attack.trace")
    root = os.path.join(mnt, "share")
    run(["cp", "-a", TREE, root])
    d = tempfile.mkdtemp(dir=TMP)
    w = Ward(["record", trace, "--watch", root, "--state", os.path.join(d, "state")], d)
    p = subprocess.run(ransim("babuk-esxi", "--limit", "6")(root, os.path.join(d, "log")), capture_output=True,
                       timeout=60)
    c.check(p.returncode == 0, "record: the attack ran (recording stops nothing)", str(p.returncode))
    time.sleep(1)
    w.stop()
    r = subprocess.run([WARD, "replay", trace, "--detect"], capture_output=True, text=True)
    dets = [json.loads(x) for x in r.stdout.splitlines() if x.strip().startswith("{")]
    c.check(r.returncode == 0 and len(dets) >= 1, "replay --detect: a detection", r.stdout[:300] + r.stderr[:300])
    if dets:
        c.check(any(e.get("indicator", "").startswith("content.") for e in dets[0].get("evidence", [])),
                "replay --detect: content evidence", str(dets[0])[:300])

shutil.rmtree(TMP, ignore_errors=True)
c.done()
