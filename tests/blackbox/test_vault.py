"""The vault, black-box: the real ward on ext4 and xfs loop images (and btrfs, when
mkfs.btrfs is there) with a realistic tree (odd names: spaces, newlines, non-UTF-8 bytes;
hard links; sparse files).

  - attacks from the corpus, stopped: `ward restore ID` gives back a tree byte-identical to
    before (recursive sha256 manifest) with the attack's outputs (encrypted copies, ransom
    notes) in quarantine; a dry run changes nothing; a second restore changes nothing;
  - another root process cannot read, delete or rename anything in the vault;
  - attacks left to finish (monitor mode) on odd names, hard links and a sparse disk image:
    everything comes back (hard links as links, the image sparse, mode, owner and times);
    a restore killed part-way and run again completes;
  - a full vault: ward says so in its log and lets writes through (fail-open) or denies
    them (on_failure = deny);
  - ward killed mid-attack and restarted: the index is intact and the restore complete;
  - restore by path and time undoes an overwrite.
"""
import json
import os
import shutil
import signal
import sqlite3
import stat
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
ODD = [b"with space.txt", b"new\nline.txt", b"latin-\xe9\xff.txt"]


def manifest(root):
    r = subprocess.run(["bash", os.path.join(CORPUS, "manifest.sh"), root], capture_output=True, check=True)
    return r.stdout


def names(m):
    """The paths of a manifest (field 5 on, escaped as manifest.sh writes them)."""
    return {line.split(b" ", 4)[4] for line in m.splitlines()}


def show_diff(before, after):
    b, a = set(before.splitlines()), set(after.splitlines())
    print("  missing:", sorted(b - a)[:5], "\n  extra:", sorted(a - b)[:5])


def incidents(state):
    r = subprocess.run([WARD, "incidents", "--state", state, "--json"], capture_output=True, text=True)
    return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]


def restore(*args, env=None):
    return subprocess.run([WARD, "restore"] + list(args), capture_output=True, text=True, env=env)


def config(name, text):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def make_extra(extra, links=True, sparse_mb=48):
    """Odd names, a hard-linked pair, a sparse disk image, a file with its own mode, owner
    and times."""
    os.makedirs(extra, exist_ok=True)
    for name in ODD:
        with open(os.path.join(extra.encode(), name), "w") as f:
            f.write("odd name " * 300)
    meta = os.path.join(extra, "with space.txt")
    os.chmod(meta, 0o640)
    os.chown(meta, 1234, 5678)
    os.utime(meta, (1500000000, 1500000001))
    with open(os.path.join(extra, "linked.txt"), "w") as f:
        f.write("hard linked content\n" * 200)
    if links:
        os.link(os.path.join(extra, "linked.txt"), os.path.join(extra, "linked-2.txt"))
    with open(os.path.join(extra, "sparse.img"), "wb") as f:
        f.truncate(sparse_mb << 20)
        f.seek(20 << 20)
        f.write(b"MIDDLE" * 1000)


def make_tree(share, links=True):
    subprocess.run(["bash", os.path.join(CORPUS, "mkdata.sh"), share, "small", "7"], check=True,
                   capture_output=True)
    make_extra(os.path.join(share, "Extra"), links)


NOCANARY = config("nocanary.conf", "[canary]\nenabled = no\n[prevent]\nenabled = no\n")


def tamper_checks(tag, mnt):
    """Another root process: no open of a version, no unlink or rename in the vault."""
    vault = os.path.join(mnt, ".ward-vault")
    # An ordinary change outside the share makes sure there is a version (an attack stopped
    # at its notes changed no file).
    scratch = os.path.join(mnt, "scratch.txt")
    with open(scratch, "w") as f:
        f.write("scratch\n" * 100)
    subprocess.run(["sh", "-c", f"echo more >> '{scratch}'"], check=True)
    vnames = wait_for(lambda: [n for n in os.listdir(vault) if n.startswith("v-")], 5)
    if not c.check(vnames, f"{tag}: the vault holds versions"):
        return
    r = subprocess.run(["cat", os.path.join(vault, vnames[0])], capture_output=True)
    c.check(r.returncode != 0 and b"Operation not permitted" in r.stderr, f"{tag}: vault denied to root cat",
            r.stderr.decode())
    for what, cmd in [("index", ["rm", "-f", os.path.join(vault, "index.db")]),
                      ("version", ["rm", "-f", os.path.join(vault, vnames[0])]),
                      ("index (rename)", ["mv", os.path.join(vault, "index.db"), os.path.join(vault, "x")])]:
        r = subprocess.run(cmd, capture_output=True)
        c.check(r.returncode != 0 and os.path.exists(os.path.join(vault, "index.db")) and
                os.path.exists(os.path.join(vault, vnames[0])), f"{tag}: vault {what} cannot be removed by root",
                r.stderr.decode())


def attack_and_restore(fstype, mode, canaries, notes=False, links=True):
    with loopfs(fstype, 512) as mnt:
        share = os.path.join(mnt, "share")
        make_tree(share, links)
        state = os.path.join(tmp, f"st-{fstype}-{mode}")
        args = ["run", "--watch", share, "--state", state] + ([] if canaries else ["--config", NOCANARY])
        ward = Ward(args, tmp)
        before = manifest(share)  # after ward placed its canaries: they are part of the tree
        log = os.path.join(tmp, f"{mode}.log")
        r = subprocess.run([RANSIM, "--mode", mode, "--root", share, "--log", log] + (["--notes"] if notes else []),
                           capture_output=True, timeout=120)
        tag = f"{fstype}/{mode}{' with notes' if notes else ''}{'' if canaries else ' (no canaries)'}"
        c.check(r.returncode == -signal.SIGKILL, f"{tag}: attacker killed", str(r.returncode))
        wait_for(lambda: incidents(state), 10)
        inc = incidents(state)
        if not c.check(len(inc) == 1, f"{tag}: one incident", str(len(inc))):
            ward.stop()
            return
        iid = inc[0]["id"]
        touched = manifest(share)
        made = names(touched) - names(before)       # encrypted copies, renamed files, notes
        if notes:
            c.check(made and not names(before) - names(touched),
                    f"{tag}: the attack dropped notes before it was stopped", str(len(made)))
        else:
            c.check(set(before.splitlines()) - set(touched.splitlines()),
                    f"{tag}: the attack changed files before it was stopped")
        r = restore(iid, "--state", state, "--dry-run")
        c.check(r.returncode == 0 and "would restore" in r.stdout, f"{tag}: dry run", r.stdout + r.stderr)
        c.check(manifest(share) == touched, f"{tag}: the dry run changed nothing")
        r = restore(iid, "--state", state)
        c.check(r.returncode == 0, f"{tag}: restore exits 0", r.stdout + r.stderr)
        after = manifest(share)
        if after != before:
            show_diff(before, after)
        c.check(after == before, f"{tag}: the tree is byte-identical to before the attack")
        q = os.path.join(mnt, ".ward-quarantine", iid)
        quarantined = os.listdir(q) if os.path.isdir(q) else []
        c.check(len(quarantined) >= len(made), f"{tag}: the attack's {len(made)} new file(s) are in quarantine",
                str(len(quarantined)))
        if notes:
            note = os.path.basename(sorted(made)[0]).decode()
            c.check(sum(n.endswith("-" + note) for n in quarantined) == len(made),
                    f"{tag}: every ransom note is in quarantine", str(quarantined[:3]))
        r = restore(iid, "--state", state)
        c.check(r.returncode == 0 and "restored 0 file(s)" in r.stdout and "0 moved to quarantine" in r.stdout and
                manifest(share) == before, f"{tag}: a second restore changes nothing", r.stdout)
        tamper_checks(tag, mnt)
        c.check(ward.stop() == 0, f"{tag}: ward stops")


def finished_attack(fstype, mode):
    """Monitor mode: the attack runs to the end over odd names, hard links and a sparse
    image (saved by range: large_file below its size). The restore is killed part-way
    (ward stopped, restore run directly), then run again through the restarted ward."""
    tag = f"{fstype}/{mode} to the end"
    conf = config(f"monitor-{fstype}.conf", "[ward]\nmode = monitor\n[canary]\nenabled = no\n"
                  "[prevent]\nenabled = no\n[vault]\nlarge_file = 16M\n")
    with loopfs(fstype, 512) as mnt:
        share = os.path.join(mnt, "share")
        extra = os.path.join(share, "Extra")
        for i in range(8):
            os.makedirs(share, exist_ok=True)
            with open(os.path.join(share, f"doc{i}.txt"), "w") as f:
                f.write(f"line {i} of a document\n" * 400)
        make_extra(extra)
        sparse = os.path.join(extra, "sparse.img")
        sparse_blocks = os.stat(sparse).st_blocks
        meta = os.stat(os.path.join(extra, "with space.txt"))
        state = os.path.join(tmp, f"st-{fstype}-{mode}-monitor")
        args = ["run", "--watch", share, "--state", state, "--config", conf]
        ward = Ward(args, tmp)
        before = manifest(share)
        r = subprocess.run([RANSIM, "--mode", mode, "--root", share], capture_output=True, timeout=120)
        c.check(r.returncode == 0 and json.loads(r.stdout)["files_done"] == 14,
                f"{tag}: every file encrypted", r.stdout.decode()[-200:])
        wait_for(lambda: incidents(state), 10)
        inc = incidents(state)
        if not c.check(len(inc) == 1 and inc[0]["status"] == "reported", f"{tag}: one incident, reported",
                       str(inc)[:300]):
            ward.stop()
            return
        iid = inc[0]["id"]
        touched = manifest(share)
        same = {x for x in set(before.splitlines()) & set(touched.splitlines()) if x.startswith(b"f ")}
        c.check(not same, f"{tag}: no file left as it was", str(sorted(same)[:3]))
        if mode == "babuk-esxi":   # it writes whole files: the image is dense now
            dense = sum(os.stat(os.path.join(extra, n)).st_blocks for n in os.listdir(extra) if "sparse" in n)
            c.check(dense > 8 * sparse_blocks, f"{tag}: the attack filled the sparse image",
                    f"{dense * 512} bytes allocated")
        # Killed after 5 files, as a crash would: ward is stopped, the CLI restores directly.
        c.check(ward.stop() == 0, f"{tag}: ward stops")
        env = dict(os.environ, WARD_TEST_RESTORE_KILL_AFTER="5")
        r = restore(iid, "--state", state, "--watch", share, env=env)
        partial = manifest(share)
        c.check(r.returncode == -signal.SIGKILL and partial != touched and partial != before,
                f"{tag}: a restore killed part-way left the tree part-restored", str(r.returncode))
        ward = Ward(args, tmp)
        r = restore(iid, "--state", state)
        after = manifest(share)
        if after != before:
            show_diff(before, after)
        c.check(r.returncode == 0 and after == before, f"{tag}: run again, the tree is byte-identical",
                r.stdout + r.stderr)
        ino = [os.stat(p).st_ino if os.path.exists(p) else None
               for p in (os.path.join(extra, "linked.txt"), os.path.join(extra, "linked-2.txt"))]
        c.check(ino[0] and ino[0] == ino[1] and os.stat(os.path.join(extra, "linked.txt")).st_nlink == 2,
                f"{tag}: the hard links are one file again", str(ino))
        now = os.stat(sparse).st_blocks
        c.check(now <= 2 * sparse_blocks + 256, f"{tag}: the sparse image is sparse again",
                f"{now * 512} bytes allocated, {sparse_blocks * 512} before")
        m = os.stat(os.path.join(extra, "with space.txt"))
        c.check((stat.S_IMODE(m.st_mode), m.st_uid, m.st_gid, m.st_mtime_ns) ==
                (stat.S_IMODE(meta.st_mode), meta.st_uid, meta.st_gid, meta.st_mtime_ns),
                f"{tag}: mode, owner and mtime restored", f"{oct(m.st_mode)} {m.st_uid} {m.st_mtime_ns}")
        r = restore(iid, "--state", state)
        c.check(r.returncode == 0 and "restored 0 file(s)" in r.stdout and "0 moved to quarantine" in r.stdout and
                manifest(share) == before, f"{tag}: a third restore changes nothing", r.stdout)
        tamper_checks(tag, mnt)
        c.check(ward.stop() == 0, f"{tag}: ward stops")


def vault_full():
    """A vault smaller than one save: logged, then the write goes through (fail-open, the
    default) or is denied (on_failure = deny)."""
    with loopfs("ext4", 256) as mnt:
        share = os.path.join(mnt, "share")
        os.makedirs(share)
        for i in range(2):
            with open(os.path.join(share, f"big{i}.dat"), "wb") as f:
                f.write(os.urandom(200 << 10))
        for policy, name in [("", "big0.dat"), ("on_failure = deny\n", "big1.dat")]:
            tag = f"vault full ({'fail-closed' if policy else 'fail-open'})"
            conf = config("full.conf", "[canary]\nenabled = no\n[prevent]\nenabled = no\n"
                          f"[vault]\nmax_size = 64K\n{policy}")
            ward = Ward(["run", "--watch", share, "--state", os.path.join(tmp, "st-full"), "--config", conf], tmp)
            target = os.path.join(share, name)
            old = open(target, "rb").read()
            r = subprocess.run(["sh", "-c", f"echo overwritten > '{target}'"], capture_output=True, text=True)
            changed = open(target, "rb").read() != old
            time.sleep(0.2)
            err = ward.stderr()
            c.check("is full" in err and "saves refused" in err, f"{tag}: ward says the vault is full",
                    err[-300:])
            if policy:
                c.check(r.returncode != 0 and not changed and "denied with EIO (fail-closed)" in err,
                        f"{tag}: the write is denied", r.stderr)
            else:
                c.check(r.returncode == 0 and changed and "allowed unsaved (fail-open)" in err,
                        f"{tag}: the write goes through, unsaved", r.stderr)
            ward.stop()


for fstype, mode, canaries, notes, links in [
        ("ext4", "babuk-esxi", True, False, True),
        # Deleted originals come back from what the guard held open, under the one name it
        # saw first: a hard-linked pair deleted through both names would come back as one.
        ("ext4", "wannacry", False, False, False),
        ("ext4", "header", False, True, True),
        ("xfs", "babuk-nas", False, False, True),
        ("xfs", "otrunc", True, False, True)] + \
        ([("btrfs", "babuk-esxi", False, False, True)] if shutil.which("mkfs.btrfs") else []):
    attack_and_restore(fstype, mode, canaries, notes, links)
finished_attack("ext4", "babuk-esxi")
finished_attack("xfs", "header")
vault_full()

# ward killed mid-attack, restarted: the index is intact and the restore complete
with loopfs("ext4", 512) as mnt:
    share = os.path.join(mnt, "share")
    make_tree(share)
    state = os.path.join(tmp, "st-kill")
    ward = Ward(["run", "--watch", share, "--state", state, "--config", NOCANARY], tmp)
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
    ward = Ward(["run", "--watch", share, "--state", state, "--config", NOCANARY], tmp)
    try:
        att.wait(60)
    except subprocess.TimeoutExpired:
        att.kill()
    c.check(att.returncode == -signal.SIGKILL, "the restarted ward stops the slow attacker", str(att.returncode))
    wait_for(lambda: incidents(state), 10)
    inc = incidents(state)
    if c.check(len(inc) >= 1, "an incident after the restart"):
        c.check(manifest(share) != before, "the slow attack changed the tree")
        r = restore(inc[-1]["id"], "--state", state)
        c.check(r.returncode == 0, "restore after the restart", r.stdout + r.stderr)
        after = manifest(share)
        if after != before:
            show_diff(before, after)
        c.check(after == before, "byte-identical after kill, restart and restore")
    # restore by path and time, undetected damage: an ordinary overwrite is undone
    target = os.path.join(share, "Extra", "with space.txt")
    orig = open(target, "rb").read()
    t0 = int(time.time())
    time.sleep(1.1)
    subprocess.run(["sh", "-c", f"echo damaged > '{target}'"], check=True)
    c.check(open(target, "rb").read() != orig, "the overwrite happened")
    r = restore("--path", os.path.join(share, "Extra"), "--before", f"@{t0 + 1}", "--state", state)
    c.check(r.returncode == 0 and open(target, "rb").read() == orig and "restored 1 file(s)" in r.stdout,
            "restore --path --before undoes an overwrite", r.stdout + r.stderr)
    ward.stop()

c.done()
