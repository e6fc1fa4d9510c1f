"""The vault, black-box: the real ward on ext4 and xfs loop images with a realistic tree
(odd names, hard links, sparse files); attacks stopped; `ward restore ID` gives back a tree
byte-identical to before (recursive sha256 manifest) with the attack's outputs in
quarantine; a dry run changes nothing; a second restore changes nothing; another root
process is denied the vault; ward killed mid-attack and restarted keeps an intact index
and the restore is still complete; restore by path and time."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from wardtest import BUILD, WARD, Checks, Ward, loopfs, wait_for  # noqa: E402

c = Checks("blackbox-vault")
tmp = tempfile.mkdtemp()
HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")
RANSIM = os.path.join(BUILD, "helpers", "ransim")


def manifest(root):
    r = subprocess.run(["bash", os.path.join(CORPUS, "manifest.sh"), root], capture_output=True, check=True)
    return r.stdout


def incidents(state):
    r = subprocess.run([WARD, "incidents", "--state", state, "--json"], capture_output=True, text=True)
    return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]


def make_tree(share):
    subprocess.run(["bash", os.path.join(CORPUS, "mkdata.sh"), share, "small", "7"], check=True,
                   capture_output=True)
    extra = os.path.join(share, "Extra")
    os.makedirs(extra, exist_ok=True)
    for name in [b"with space.txt", b"new\nline.txt", b"latin-\xe9\xff.txt"]:
        with open(os.path.join(extra.encode(), name), "w") as f:
            f.write("odd name " * 300)
    with open(os.path.join(extra, "linked.txt"), "w") as f:
        f.write("hard linked content\n" * 200)
    os.link(os.path.join(extra, "linked.txt"), os.path.join(extra, "linked-2.txt"))
    with open(os.path.join(extra, "sparse.img"), "wb") as f:
        f.truncate(256 << 20)
        f.seek(100 << 20)
        f.write(b"MIDDLE" * 1000)


CONF = os.path.join(tmp, "nocanary.conf")
with open(CONF, "w") as f:
    f.write("[canary]\nenabled = no\n[prevent]\nenabled = no\n")


def attack_and_restore(fstype, mode, canaries):
    with loopfs(fstype, 512) as mnt:
        share = os.path.join(mnt, "share")
        make_tree(share)
        state = os.path.join(tmp, f"st-{fstype}-{mode}")
        args = ["run", "--watch", share, "--state", state] + ([] if canaries else ["--config", CONF])
        ward = Ward(args, tmp)
        before = manifest(share)  # after ward placed its canaries: they are part of the tree
        log = os.path.join(tmp, f"{mode}.log")
        r = subprocess.run([RANSIM, "--mode", mode, "--root", share, "--log", log, "--notes"],
                           capture_output=True, timeout=120)
        tag = f"{fstype}/{mode}{'' if canaries else ' (no canaries)'}"
        c.check(r.returncode == -signal.SIGKILL, f"{tag}: attacker killed", str(r.returncode))
        wait_for(lambda: incidents(state), 10)
        inc = incidents(state)
        if not c.check(len(inc) == 1, f"{tag}: one incident", str(len(inc))):
            ward.stop()
            return
        iid = inc[0]["id"]
        touched = manifest(share)
        c.check(touched != before, f"{tag}: the attack changed the tree before it was stopped")
        r = subprocess.run([WARD, "restore", iid, "--state", state, "--dry-run"], capture_output=True, text=True)
        c.check(r.returncode == 0 and "would restore" in r.stdout, f"{tag}: dry run", r.stdout + r.stderr)
        c.check(manifest(share) == touched, f"{tag}: the dry run changed nothing")
        r = subprocess.run([WARD, "restore", iid, "--state", state], capture_output=True, text=True)
        c.check(r.returncode == 0, f"{tag}: restore exits 0", r.stdout + r.stderr)
        after = manifest(share)
        same = after == before
        if not same:
            b, a = set(before.splitlines()), set(after.splitlines())
            print("  missing:", sorted(b - a)[:5], "\n  extra:", sorted(a - b)[:5])
        c.check(same, f"{tag}: the tree is byte-identical to before the attack")
        q = os.path.join(mnt, ".ward-quarantine", iid)
        c.check(os.path.isdir(q) and len(os.listdir(q)) >= 1, f"{tag}: the attack's outputs are in quarantine")
        r = subprocess.run([WARD, "restore", iid, "--state", state], capture_output=True, text=True)
        c.check(r.returncode == 0 and "restored 0 file(s)" in r.stdout and manifest(share) == before,
                f"{tag}: a second restore changes nothing", r.stdout)
        # tamper: another root process may not open the vault
        vault = os.path.join(mnt, ".ward-vault")
        names = [n for n in os.listdir(vault) if n.startswith("v-")] if os.path.isdir(vault) else []
        if c.check(names, f"{tag}: the vault holds versions"):
            r = subprocess.run(["cat", os.path.join(vault, names[0])], capture_output=True)
            c.check(r.returncode != 0 and b"Operation not permitted" in r.stderr, f"{tag}: vault denied to root cat",
                    r.stderr.decode())
            r = subprocess.run(["rm", "-f", os.path.join(vault, "index.db")], capture_output=True)
            c.check(os.path.exists(os.path.join(vault, "index.db")), f"{tag}: vault index cannot be deleted",
                    r.stderr.decode())
        c.check(ward.stop() == 0, f"{tag}: ward stops")


for fstype, mode, canaries in [("ext4", "babuk-esxi", True), ("ext4", "wannacry", False),
                               ("ext4", "header", False), ("xfs", "babuk-nas", False),
                               ("xfs", "otrunc", True)]:
    attack_and_restore(fstype, mode, canaries)

# ward killed mid-attack, restarted: the index is intact and the restore complete
with loopfs("ext4", 512) as mnt:
    share = os.path.join(mnt, "share")
    make_tree(share)
    state = os.path.join(tmp, "st-kill")
    ward = Ward(["run", "--watch", share, "--state", state, "--config", CONF], tmp)
    before = manifest(share)
    log = os.path.join(tmp, "slow.log")
    att = subprocess.Popen([RANSIM, "--mode", "slow", "--delay-ms", "1500", "--root", share, "--log", log],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(log) and len(open(log).readlines()) >= 1, 20)
    time.sleep(0.3)  # between two files
    ward.p.send_signal(signal.SIGKILL)
    ward.p.wait()
    idx = os.path.join(mnt, ".ward-vault", "index.db")
    ok = sqlite3.connect(f"file:{idx}?mode=ro", uri=True).execute("PRAGMA integrity_check").fetchone()[0]
    c.check(ok == "ok", "index intact after SIGKILL", ok)
    ward = Ward(["run", "--watch", share, "--state", state, "--config", CONF], tmp)
    try:
        att.wait(60)
    except subprocess.TimeoutExpired:
        att.kill()
    c.check(att.returncode == -signal.SIGKILL, "the restarted ward stops the slow attacker", str(att.returncode))
    wait_for(lambda: incidents(state), 10)
    inc = incidents(state)
    if c.check(len(inc) >= 1, "an incident after the restart"):
        r = subprocess.run([WARD, "restore", inc[-1]["id"], "--state", state], capture_output=True, text=True)
        c.check(r.returncode == 0, "restore after the restart", r.stdout + r.stderr)
        after = manifest(share)
        if after != before:
            b, a = set(before.splitlines()), set(after.splitlines())
            print("  missing:", sorted(b - a)[:5], "\n  extra:", sorted(a - b)[:5])
        c.check(after == before, "byte-identical after kill, restart and restore")
    # restore by path and time, undetected damage: an ordinary overwrite is undone
    target = os.path.join(share, "Extra", "with space.txt")
    orig = open(target, "rb").read()
    t0 = int(time.time())
    time.sleep(1.1)
    subprocess.run(["sh", "-c", f"echo damaged > '{target}'"], check=True)
    r = subprocess.run([WARD, "restore", "--path", os.path.join(share, "Extra"), "--before", f"@{t0 + 1}",
                        "--state", state], capture_output=True, text=True)
    c.check(r.returncode == 0 and open(target, "rb").read() == orig, "restore --path --before undoes an overwrite",
            r.stdout + r.stderr)
    ward.stop()

c.done()
