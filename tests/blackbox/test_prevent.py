"""Prevention, black-box: known-bad programs denied at exec by hash and by YARA rule, a
known-bad file written is reported, feeds imported and rejected, and the round trip: an
attack's incident exported as STIX, imported by a second ward, which then denies the
attacker's binary. Exec marks are put on the test's own loop filesystem only."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from wardtest import BUILD, WARD, Checks, Ward, loopfs, wait_for  # noqa: E402

c = Checks("blackbox-prevent")
tmp = tempfile.mkdtemp()


def sha256(p):
    return subprocess.run(["sha256sum", p], capture_output=True, text=True, check=True).stdout.split()[0]


def alerts(state):
    p = os.path.join(state, "alerts.json")
    if not os.path.exists(p):
        return []
    return [json.loads(line) for line in open(p) if line.strip()]


with loopfs("ext4", 256) as mnt:
    share, bindir = os.path.join(mnt, "share"), os.path.join(mnt, "bin")
    os.mkdir(share)
    os.mkdir(bindir)
    evil, good, script = os.path.join(bindir, "evil"), os.path.join(bindir, "good"), os.path.join(bindir, "tool.sh")
    shutil.copy("/bin/true", evil)
    shutil.copy("/bin/echo", good)
    with open(evil, "ab") as f:  # a binary of its own, not /bin/true's hash
        f.write(b"\0ward-test-evil\0")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n# WARD-TEST-MARKER-7f3a\necho ran\n")
    os.chmod(script, 0o755)
    rules = os.path.join(tmp, "rules.yar")
    with open(rules, "w") as f:
        f.write('rule ward_test_marker { strings: $m = "WARD-TEST-MARKER-7f3a" condition: $m }\n')
    hashes = os.path.join(tmp, "bad.txt")
    with open(hashes, "w") as f:
        f.write(f"# test block list\n{sha256(evil)}  evil test binary\n")

    # feeds: a plain list imported; a malformed STIX bundle rejected with its position
    state = os.path.join(tmp, "s1")
    r = subprocess.run([WARD, "ioc", "import", hashes, "--state", state], capture_output=True, text=True)
    c.check(r.returncode == 0 and "1 new" in r.stdout + r.stderr, "plain list imported", r.stdout + r.stderr)
    r = subprocess.run([WARD, "ioc", "import", hashes, "--state", state], capture_output=True, text=True)
    c.check(r.returncode == 0 and "0 new" in r.stdout + r.stderr, "re-import adds nothing", r.stdout + r.stderr)
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","pattern":"[file:hashes.\'SHA-256\' = \'%s\']",'
                '"pattern_type":"stix"},{"type":"indicator","pattern":"[file:hashes.MD5 = ","pattern_type":"stix"}]}' % ("ab" * 32))
    r = subprocess.run([WARD, "ioc", "import", bad, "--state", state], capture_output=True, text=True)
    c.check(r.returncode == 1 and "bad.json" in r.stderr and "objects[1]" in r.stderr, "malformed STIX names its position",
            r.stderr.strip())
    r = subprocess.run([WARD, "ioc", "lookup", "ab" * 32, "--state", state], capture_output=True, text=True)
    c.check(r.returncode == 1, "nothing of the rejected feed was imported", r.stdout)

    # a broken YARA rule stops ward with FILE:LINE
    broken = os.path.join(tmp, "broken.yar")
    with open(broken, "w") as f:
        f.write("rule ok { condition: true }\nrule broken { strings: $a = \"x\" condition: $b }\n")
    conf = os.path.join(tmp, "broken.conf")
    with open(conf, "w") as f:
        f.write(f"[prevent]\nrules = {broken}\nexec_path = {mnt}\n[vault]\nenabled = no\n")
    r = subprocess.run([WARD, "run", "--watch", share, "--state", os.path.join(tmp, "sb"), "--config", conf],
                       capture_output=True, text=True, timeout=30)
    c.check(r.returncode != 0 and f"{broken}:2:" in r.stderr, "broken rule file: FILE:LINE", r.stderr.strip()[-300:])

    conf = os.path.join(tmp, "p.conf")
    with open(conf, "w") as f:
        f.write(f"[prevent]\nrules = {rules}\nexec_path = {mnt}\n[canary]\nenabled = no\n")
    ward = Ward(["run", "--watch", share, "--state", state, "--config", conf], tmp)
    r = subprocess.run(["sh", "-c", evil], capture_output=True, text=True)
    c.check(r.returncode == 126, "known-bad binary: exec denied, exit 126", f"{r.returncode} {r.stderr}")
    r = subprocess.run([good, "still", "runs"], capture_output=True, text=True)
    c.check(r.returncode == 0 and r.stdout.strip() == "still runs", "another program on the same filesystem runs")
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    c.check(r.returncode == 126 and "ran" not in r.stdout, "script matching a YARA rule: exec denied", f"{r.returncode}")
    r = subprocess.run(["sh", "-c", evil], capture_output=True, text=True)
    c.check(r.returncode == 126, "denied again (cached verdict)", str(r.returncode))
    # a cleared program changed afterwards is judged again
    r = subprocess.run([good, "x"], capture_output=True, text=True)
    c.check(r.returncode == 0, "good runs before the change")
    with open(good, "ab") as f:
        f.write(b"\nWARD-TEST-MARKER-7f3a\n")
    r = subprocess.run(["sh", "-c", good + " x"], capture_output=True, text=True)
    c.check(r.returncode == 126, "a cleared program changed to match a rule is denied", str(r.returncode))
    # a known-bad file written under the share is reported
    dropped = os.path.join(share, "dropped-tool")
    shutil.copy(evil, dropped)
    wait_for(lambda: any(a["event"]["action"] == "malware-written" and a["file"]["path"] == dropped
                         for a in alerts(state)), 10)
    al = alerts(state)
    denied = [a for a in al if a["event"]["action"] == "execution-denied"]
    c.check(len(denied) >= 3, "alerts for the denied execs", str(len(denied)))
    c.check(any(sha256(evil) in a["message"] and a["rule"]["name"] == "ward.prevent.known_bad" for a in denied),
            "the alert names the hash indicator")
    c.check(any("ward_test_marker" in a["message"] for a in denied), "the alert names the YARA rule")
    c.check(any(a["event"]["action"] == "malware-written" and a["file"]["path"] == dropped for a in al),
            "a known-bad file written is reported", str([(a["event"]["action"], a["file"]["path"]) for a in al]))
    st = json.loads(subprocess.run([WARD, "status", "--state", state, "--json"], capture_output=True, text=True).stdout)
    c.check(st.get("exec_denied", 0) >= 3 and st.get("indicators") == 1, "status counts denials", str(st.get("exec_denied")))
    c.check(ward.stop() == 0, "ward stops cleanly")

    # ward scan: the same rules and lists on demand
    r = subprocess.run([WARD, "scan", "--json", "--rules", rules, "--hashes", hashes, bindir, share],
                       capture_output=True, text=True, timeout=60)
    found = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    c.check(r.returncode == 1 and len(found) >= 3, "ward scan finds the matches, exit 1", f"{r.returncode} {len(found)}")
    r = subprocess.run([WARD, "scan", "--rules", rules, "/usr/bin/true"], capture_output=True, text=True)
    c.check(r.returncode == 0, "ward scan: clean file, exit 0", str(r.returncode))
    r = subprocess.run([WARD, "scan", "--rules", broken, "/usr/bin/true"], capture_output=True, text=True)
    c.check(r.returncode == 2 and f"{broken}:2" in r.stderr, "ward scan: broken rules, exit 2", r.stderr.strip())

    # the round trip: an attack's incident exported, imported by a second ward, denied there
    attacker = os.path.join(bindir, "encryptor")
    shutil.copy(os.path.join(BUILD, "helpers", "ransim"), attacker)
    data = os.path.join(share, "data")
    os.mkdir(data)
    for i in range(20):
        with open(os.path.join(data, f"doc{i}.txt"), "w") as f:
            f.write(("quarterly report line %d\n" % i) * 400)
    s1 = os.path.join(tmp, "peer1")
    conf1 = os.path.join(tmp, "peer1.conf")
    with open(conf1, "w") as f:
        f.write(f"[prevent]\nexec_path = {mnt}\n")
    ward = Ward(["run", "--watch", share, "--state", s1, "--config", conf1], tmp)
    subprocess.run([attacker, "--mode", "babuk-esxi", "--root", data, "--log", os.path.join(tmp, "a.log")],
                   capture_output=True, timeout=60)
    wait_for(lambda: subprocess.run([WARD, "incidents", "--state", s1, "--json"], capture_output=True, text=True).stdout.strip(), 10)
    ward.stop()
    incs = [json.loads(x) for x in subprocess.run([WARD, "incidents", "--state", s1, "--json"], capture_output=True,
                                                   text=True).stdout.splitlines() if x.strip()]
    c.check(len(incs) == 1 and incs[0]["process"]["hash"]["sha256"] == sha256(attacker), "incident with the attacker's hash")
    if incs:
        r = subprocess.run([WARD, "incident", "export", incs[0]["id"], "--state", s1], capture_output=True, text=True)
        c.check(r.returncode == 0, "incident exported", r.stderr)
        bundle = json.loads(r.stdout)
        c.check(bundle["type"] == "bundle" and any(o["type"] == "indicator" and sha256(attacker) in o["pattern"]
                                                   for o in bundle["objects"]), "STIX bundle with an indicator on the hash")
        bpath = os.path.join(tmp, "bundle.json")
        with open(bpath, "w") as f:
            f.write(r.stdout)
        s2 = os.path.join(tmp, "peer2")
        r = subprocess.run([WARD, "ioc", "import", bpath, "--state", s2], capture_output=True, text=True)
        c.check(r.returncode == 0, "the peer imports the bundle", r.stderr)
        ward = Ward(["run", "--watch", share, "--state", s2, "--config", conf1], tmp)
        r = subprocess.run(["sh", "-c", attacker + " --help"], capture_output=True, text=True)
        c.check(r.returncode == 126, "the peer denies the attacker's binary", str(r.returncode))
        wait_for(lambda: alerts(s2), 5)
        c.check(any(a["event"]["action"] == "execution-denied" for a in alerts(s2)), "the peer alerts")
        ward.stop()

c.done()
