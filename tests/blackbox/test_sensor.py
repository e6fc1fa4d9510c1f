"""The sensor, black-box: the real ward binary, a loop-mounted ext4, real processes.
Every check names the exact event, path, pid and executable it expects."""
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from wardtest import WARD, Checks, Ward, find, loopfs, path_of, run, wait_for  # noqa: E402

c = Checks("blackbox-sensor")


def spawn(cmd, **kw):
    """Runs cmd to completion, returning its pid."""
    p = subprocess.Popen(cmd, **kw)
    p.wait()
    c.check(p.returncode == 0, f"{cmd} exits 0")
    return p.pid


def one(evs, action, path, pid=None, exe=None, what=""):
    got = find(evs, action, path)
    if not c.check(len(got) >= 1, f"{what or action} {path}: event present",
                   f"{len(got)} found"):
        return None
    if pid is not None:
        mine = [e for e in got if e["process"]["pid"] == pid]
        if not c.check(len(mine) >= 1, f"{action} {path}: pid {pid}",
                       str([e["process"]["pid"] for e in got])):
            return None
        got = mine
    e = got[0]
    if exe is not None:
        c.check(os.path.realpath(e["process"].get("executable", "")) == os.path.realpath(exe),
                f"{action} {path}: executable", f"{e['process'].get('executable')} != {exe}")
    return e


with loopfs("ext4") as mnt:
    w = os.path.join(mnt, "watched")
    outside = os.path.join(mnt, "outside")
    os.mkdir(w)
    os.mkdir(outside)
    tmp = tempfile.mkdtemp()
    ward = Ward(["trace", "--watch", w], tmp)

    # create, write, close, rename, delete, mkdir, rmdir, hard link: each by its own process
    a, b = os.path.join(w, "a"), os.path.join(w, "b")
    p_touch = spawn(["touch", a])
    p_dd = spawn(["dd", "if=/dev/zero", f"of={a}", "bs=1024", "count=4", "conv=notrunc",
                  "status=none"])
    p_mv = spawn(["mv", a, b])
    p_ln = spawn(["ln", b, os.path.join(w, "b-link")])
    p_rm = spawn(["rm", b])
    d = os.path.join(w, "dir")
    p_mkdir = spawn(["mkdir", d])
    p_rmdir = spawn(["rmdir", d])
    # directory renamed, then a file made under its new name: the path must follow
    p_mk2 = spawn(["mkdir", os.path.join(w, "x")])
    spawn(["mv", os.path.join(w, "x"), os.path.join(w, "y")])
    p_t2 = spawn(["touch", os.path.join(w, "y", "inner")])
    # outside the watched subtree, same filesystem: must not appear
    spawn(["touch", os.path.join(outside, "nope")])
    spawn(["mv", os.path.join(outside, "nope"), os.path.join(outside, "nope2")])
    # moved in from outside and out to outside
    spawn(["mv", os.path.join(outside, "nope2"), os.path.join(w, "came-in")])
    spawn(["mv", os.path.join(w, "b-link"), os.path.join(outside, "went-out")])
    # odd names: spaces, a newline, bytes that are not UTF-8
    odd = os.path.join(w, "a b\nc").encode() + b"\xff\xfe"
    p_odd = spawn(["touch", odd])
    # 100 short-lived shells, each writing its own pid into the file it creates
    for i in range(100):
        subprocess.run(["sh", "-c", f"echo $$ > {w}/f{i}"], check=True)

    final = os.path.join(w, "f99")
    wait_for(lambda: find(ward.events(), "close_write", final), 10)
    rc = ward.stop()
    c.check(rc == 0, "ward trace exits 0 on SIGINT", str(rc))
    evs = ward.events()

    one(evs, "create", a, p_touch, "/usr/bin/touch")
    e = one(evs, "modify", a, p_dd, "/usr/bin/dd")
    e = one(evs, "close_write", a, p_dd, "/usr/bin/dd")
    if e:
        c.check(e["file"].get("size") == 4096, "close_write size is 4096", str(e["file"].get("size")))
        c.check(e["process"]["parent"]["pid"] == os.getpid(), "dd's parent pid is the test")
        c.check(e["process"]["args"][:2] == ["dd", "if=/dev/zero"], "dd's args", str(e["process"]["args"]))
    e = one(evs, "rename", b, p_mv, "/usr/bin/mv")
    if e:
        c.check(e["ward"]["file"]["old_path"] == a, "rename carries the old path")
    e = one(evs, "create", os.path.join(w, "b-link"), p_ln, "/usr/bin/ln")
    ino_b = [x for x in evs if path_of(x) == b.encode() and x["event"]["action"] == "rename"]
    if e and ino_b:
        c.check(e["file"]["inode"] == ino_b[0]["file"]["inode"], "hard link has the same inode")
    one(evs, "delete", b, p_rm, "/usr/bin/rm")
    e = one(evs, "mkdir", d, p_mkdir, "/usr/bin/mkdir")
    if e:
        c.check(e["file"]["type"] == "dir", "mkdir is a dir")
    one(evs, "rmdir", d, p_rmdir, "/usr/bin/rmdir")
    one(evs, "mkdir", os.path.join(w, "x"), p_mk2)
    one(evs, "rename", os.path.join(w, "y"))
    one(evs, "create", os.path.join(w, "y", "inner"), p_t2, "/usr/bin/touch",
        "create under a renamed directory")
    c.check(not any(b"outside/nope" in path_of(x) for x in evs), "nothing from outside the subtree")
    e = one(evs, "rename", os.path.join(w, "came-in"), what="moved in")
    if e:
        c.check(e["ward"]["file"]["old_path"] == os.path.join(outside, "nope2"), "moved in: old path")
    e = [x for x in evs if x["event"]["action"] == "rename"
         and x.get("ward", {}).get("file", {}).get("old_path") == os.path.join(w, "b-link")]
    c.check(len(e) == 1 and path_of(e[0]) == os.path.join(outside, "went-out").encode(),
            "moved out: reported with its new path")
    one(evs, "create", odd, p_odd, "/usr/bin/touch", "odd name (newline, non-UTF-8)")

    # the 100 shells: 100 creations, each by the very sh that wrote its pid into the file
    good = 0
    pids = set()
    for i in range(100):
        f = os.path.join(w, f"f{i}")
        with open(f) as fh:
            want = int(fh.read())
        got = find(evs, "create", f)
        if (len(got) == 1 and got[0]["process"]["pid"] == want
                and os.path.basename(got[0]["process"].get("executable", "")) in ("sh", "dash")
                and got[0]["ward"]["process"]["attributed"]):
            good += 1
            pids.add(want)
    c.check(good == 100, "100 creations by short-lived sh, each attributed to its own pid", f"{good}/100")
    c.check(len(pids) == 100, "100 distinct sh pids", str(len(pids)))
    c.check(all(e["ward"]["process"]["attributed"] for e in evs), "every event attributed",
            str(sum(1 for e in evs if not e["ward"]["process"]["attributed"])))
    seqs = [e["event"]["sequence"] for e in evs]
    c.check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "sequence numbers increase")
    for k in ("@timestamp", "event", "file", "process"):
        c.check(all(k in e for e in evs), f"every event has {k}")

    # queue overflow: a tiny kernel queue, ward stopped while a burst is written
    limit_path = "/proc/sys/fs/fanotify/max_queued_events"
    with open(limit_path) as f:
        old_limit = f.read().strip()
    try:
        with open(limit_path, "w") as f:
            f.write("64")
        ward = Ward(["trace", "--watch", w], tmp)
    finally:
        with open(limit_path, "w") as f:
            f.write(old_limit)
    ward.p.send_signal(signal.SIGSTOP)
    burst = os.path.join(w, "burst")
    os.mkdir(burst)
    for i in range(500):
        with open(os.path.join(burst, f"b{i}"), "w") as f:
            f.write("x")
    ward.p.send_signal(signal.SIGCONT)
    wait_for(lambda: any(e["event"]["action"] == "overflow" for e in ward.events()), 10)
    ward.stop()
    evs = ward.events()
    ov = [e for e in evs if e["event"]["action"] == "overflow"]
    c.check(len(ov) >= 1, "queue overflow is reported as an event")
    c.check("overflow" in ward.stderr() or len(ov) >= 1, "overflow is not silent")
    c.check(len(evs) < 1500, "the burst really overflowed the queue", str(len(evs)))

    # the daemon: status answers while running, not after
    st = os.path.join(tmp, "state")
    ward = Ward(["run", "--watch", w, "--state", st], tmp)
    r = subprocess.run([WARD, "status", "--state", st], capture_output=True, text=True)
    c.check(r.returncode == 0, "status exits 0 while ward runs", r.stderr)
    c.check(w in r.stdout, "status names the watched root", r.stdout)
    r = subprocess.run([WARD, "status", "--state", st, "--json"], capture_output=True, text=True)
    c.check(r.returncode == 0 and '"watching":true' in r.stdout, "status --json", r.stdout)
    # a second ward on the same state directory is refused
    r = subprocess.run([WARD, "run", "--watch", w, "--state", st], capture_output=True, text=True, timeout=20)
    c.check(r.returncode != 0 and "another ward" in r.stderr, "second ward refused", r.stderr)
    # an unprivileged caller is refused by the control socket (SO_PEERCRED)
    os.chmod(st, 0o755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", WARD, "status",
                        "--state", st], capture_output=True, text=True)
    c.check(r.returncode != 0, "status refused for uid 65534", r.stdout + r.stderr)
    rc = ward.stop(signal.SIGTERM)
    c.check(rc == 0, "ward run exits 0 on SIGTERM", str(rc))
    r = subprocess.run([WARD, "status", "--state", st], capture_output=True, text=True)
    c.check(r.returncode == 3, "status exits 3 once ward stopped", str(r.returncode))

c.done()
