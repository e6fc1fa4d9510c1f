"""SMB, black-box: the case ward exists for. A real Samba server (smbd, daemonized, so that
its parent is init as under systemd) shares a loop-mounted ext4; ward watches the share.
An infected client encrypts files through its own SMB session (smbclient: each file is
replaced by ciphertext and renamed), while another client saves ordinary documents through
a second session at the same time. The writes on the server are done by smbd's per-client
child processes, so that is what ward sees and scores.

Checks: the attacking session's smbd child is stopped within a few files and the attacking
client loses its connection; the main smbd and the other client's session are untouched
(every one of its files arrives, it exits 0, a new client can connect afterwards); the
incident names smbd's per-session process; `ward restore` gives back the share byte for
byte and puts the encrypted copies in quarantine. Nothing is mocked: the client side is
smbclient over TCP on the loopback interface (the kernel here has no CIFS module, so the
share is not mounted)."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from wardtest import WARD, Checks, Ward, loopfs, run, wait_for  # noqa: E402

c = Checks("blackbox-smb")
SMBD, SMBCLIENT = shutil.which("smbd") or "/usr/sbin/smbd", shutil.which("smbclient")
if not (os.path.exists(SMBD) and SMBCLIENT):
    c.check(False, "samba and smbclient are installed (scripts/deps.sh installs them)")
    c.done()

PORT = 4455
tmp = tempfile.mkdtemp(prefix="ward-smb-")


def manifest(root):
    out = {}
    for dp, dns, fns in os.walk(root):
        dns[:] = sorted(d for d in dns if not d.startswith(".ward"))
        for f in sorted(fns):
            p = os.path.join(dp, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def smb(commands, timeout=120):
    """One SMB session (one smbd child on the server) running a list of commands."""
    return subprocess.run([SMBCLIENT, f"//127.0.0.1/share", "-p", str(PORT), "-N", "-E", "-c", "; ".join(commands)],
                          capture_output=True, text=True, timeout=timeout)


def incidents(state):
    r = subprocess.run([WARD, "incidents", "--state", state, "--json"], capture_output=True, text=True)
    return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]


with loopfs("ext4", 256) as mnt:
    share = os.path.join(mnt, "share")
    os.makedirs(os.path.join(share, "Patients"))
    os.makedirs(os.path.join(share, "Letters"))
    # the share's documents: text records and CSV exports, each a few KiB
    for i in range(40):
        d = "Patients" if i % 2 == 0 else "Letters"
        with open(os.path.join(share, d, f"record-{i:03d}.txt" if i % 4 else f"export-{i:03d}.csv"), "w") as f:
            for j in range(120):
                f.write(f"{i},{j},ward ward,2026-11-{1 + j % 28:02d},observation {i * j % 97},ok\n")
    sdir = os.path.join(tmp, "samba")
    for sub in ("run", "lock", "state", "cache", "private", "log"):
        os.makedirs(os.path.join(sdir, sub))
    conf = os.path.join(sdir, "smb.conf")
    with open(conf, "w") as f:
        f.write(f"""[global]
workgroup = WARDTEST
server role = standalone server
map to guest = Bad User
smb ports = {PORT}
interfaces = lo
bind interfaces only = yes
disable netbios = yes
load printers = no
printing = bsd
printcap name = /dev/null
pid directory = {sdir}/run
lock directory = {sdir}/lock
state directory = {sdir}/state
cache directory = {sdir}/cache
private dir = {sdir}/private
log file = {sdir}/log/log.%m
[share]
path = {share}
read only = no
guest ok = yes
force user = root
""")
    state = os.path.join(tmp, "state")
    nocanary = os.path.join(tmp, "ward.conf")
    with open(nocanary, "w") as f:
        f.write("[canary]\nenabled = no\n")
    ward = Ward(["run", "--watch", share, "--state", state, "--config", nocanary], tmp)
    before = manifest(share)
    # daemonized: smbd's parent is init, as under systemd
    run([SMBD, "-D", "-s", conf])
    pidfile = os.path.join(sdir, "run", "smbd.pid")
    wait_for(lambda: os.path.exists(pidfile) and smb(["ls"], 10).returncode == 0, 20)
    main_pid = int(open(pidfile).read().strip())
    c.check(smb(["ls"]).returncode == 0, "a client lists the share")

    # the infected client: reads every file, encrypts it locally, writes it back and renames it
    local = os.path.join(tmp, "client")
    os.makedirs(local)
    names = sorted(before)
    cmds = []
    for i, rel in enumerate(names):
        src = os.path.join(share, rel)  # what the client fetched (same bytes)
        enc = os.path.join(local, f"{i}.enc")
        run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:wardtest", "-in", src, "-out", enc])
        remote = rel.replace("/", "\\")
        cmds += [f'put "{enc}" "{remote}"', f'rename "{remote}" "{remote}.locked"']
    # the other client: 150 ordinary documents saved while the attack runs
    good = os.path.join(tmp, "good")
    os.makedirs(good)
    gcmds = ["mkdir Minutes"]
    for i in range(150):
        p = os.path.join(good, f"minutes-{i:03d}.txt")
        with open(p, "w") as f:
            f.write(f"Minutes of ward round {i}\n" + "Discussed the patient list.\n" * 40)
        gcmds.append(f'put "{p}" "Minutes\\minutes-{i:03d}.txt"')
    benign = subprocess.Popen([SMBCLIENT, "//127.0.0.1/share", "-p", str(PORT), "-N", "-E", "-c", "; ".join(gcmds)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    attack = smb(cmds)
    bout, _ = benign.communicate(timeout=120)
    inc = wait_for(lambda: incidents(state), 15)

    locked = [rel for rel in manifest(share) if rel.endswith(".locked")]
    print(f"  smb: {len(locked)} of {len(names)} files encrypted before the session was stopped")
    c.check(attack.returncode != 0, "the attacking client's session is cut", f"exit {attack.returncode}")
    c.check(0 < len(locked) <= 10, "the attack was stopped within its first files",
            f"{len(locked)} of {len(names)} encrypted")
    c.check(len(inc) == 1, "one incident", str(len(inc)))
    if inc:
        i0 = inc[0]
        proc = i0.get("process", {})
        c.check(os.path.basename(proc.get("executable", "")) == "smbd" and proc.get("pid") != main_pid
                and proc.get("parent", {}).get("pid") == main_pid,
                "the actor is smbd's per-client process, not the main smbd",
                f"{proc.get('executable')} pid {proc.get('pid')} parent {proc.get('parent')} (main {main_pid})")
        c.check(i0.get("status") == "killed", "the session process was killed", str(i0.get("status")))
    alive = subprocess.run(["kill", "-0", str(main_pid)]).returncode == 0
    c.check(alive, "the main smbd still runs")
    got = sorted(os.listdir(os.path.join(share, "Minutes"))) if os.path.isdir(os.path.join(share, "Minutes")) else []
    c.check(benign.returncode == 0 and len(got) == 150, "the other client's session saved all its documents",
            f"exit {benign.returncode}, {len(got)} of 150: {bout[-300:]}")
    c.check(smb(["ls"]).returncode == 0, "a new client connects after the incident")

    if inc:
        r = subprocess.run([WARD, "restore", inc[0]["id"], "--state", state], capture_output=True, text=True)
        c.check(r.returncode == 0, "restore exits 0", r.stdout + r.stderr)
        after = {k: v for k, v in manifest(share).items() if not k.startswith("Minutes/")}
        missing = sorted(set(before) - set(after))
        extra = sorted(set(after) - set(before))
        c.check(after == before, "the share is byte-identical to before the attack (apart from the other "
                "client's new documents)", f"missing {missing[:3]} extra {extra[:3]}")
        q = os.path.join(mnt, ".ward-quarantine", inc[0]["id"])
        qn = sum(len(fs) for _, _, fs in os.walk(q)) if os.path.isdir(q) else 0
        c.check(qn >= len(locked), "the encrypted copies are in quarantine", f"{qn} file(s), {len(locked)} encrypted")
    # stop smbd (its children with it)
    try:
        os.kill(main_pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    wait_for(lambda: subprocess.run(["pgrep", "-f", conf], capture_output=True).returncode != 0, 10)
    subprocess.run(["pkill", "-9", "-f", conf], capture_output=True)
    time.sleep(0.2)
    c.check(ward.stop() == 0, "ward stops")

if c.failed:
    print(f"  kept for a look: {tmp}")
else:
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
