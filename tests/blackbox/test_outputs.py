"""Outputs, black-box: alerts reach a real syslog receiver (a unix datagram socket and a
TCP listener the test owns) and the JSON file, each alert valid against the ECS names and
types it claims; OCSF on request; the metrics endpoint's counters move with real events;
killing the alert receiver mid-attack changes nothing for detection, stopping or the vault;
SIGHUP reloads without losing events."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from wardtest import BUILD, WARD, Checks, Ward, loopfs, wait_for  # noqa: E402

c = Checks("blackbox-outputs")
tmp = tempfile.mkdtemp()
RANSIM = os.path.join(BUILD, "helpers", "ransim")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ecs_valid(a):
    """Checks the ECS fields an alert claims, with their ECS types."""
    problems = []
    def typ(path, want):
        cur = a
        for k in path.split("."):
            if not isinstance(cur, dict) or k not in cur:
                problems.append(f"missing {path}")
                return None
            cur = cur[k]
        if not isinstance(cur, want) or (want is int and isinstance(cur, bool)):
            problems.append(f"{path} is {type(cur).__name__}, not {want.__name__}")
        return cur
    ts = typ("@timestamp", str)
    if ts and not RFC3339.match(ts):
        problems.append("@timestamp not RFC 3339")
    if typ("event.kind", str) != "alert":
        problems.append("event.kind is not alert")
    for k in ("event.category", "event.type"):
        v = typ(k, list)
        if v is not None and not all(isinstance(x, str) for x in v):
            problems.append(f"{k} not a list of keywords")
    typ("event.action", str)
    typ("event.severity", int)
    typ("rule.name", str)
    typ("message", str)
    typ("process.pid", int)
    typ("process.executable", str)
    typ("process.parent.pid", int)
    typ("host.hostname", str)
    typ("ward.incident.id", str)
    if not isinstance(a.get("ward", {}).get("score"), (int, float)):
        problems.append("ward.score is not a number")
    sha = a.get("process", {}).get("hash", {}).get("sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
        problems.append("process.hash.sha256 not a hex digest")
    fp = a.get("file", {}).get("path")
    if fp is not None and not isinstance(fp, str):
        problems.append("file.path not a keyword")
    return problems


def attack_tree(share):
    d = os.path.join(share, "docs")
    os.makedirs(d, exist_ok=True)
    for i in range(30):
        with open(os.path.join(d, f"report-{i}.txt"), "w") as f:
            f.write(("clinical record %d\n" % i) * 300)
    return d


with loopfs("ext4", 256) as mnt:
    share = os.path.join(mnt, "share")
    os.mkdir(share)
    data = attack_tree(share)

    # a local syslog receiver: a unix datagram socket the test owns
    sock_path = os.path.join(tmp, "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(sock_path)
    rx.settimeout(0.2)
    port = free_port()
    state = os.path.join(tmp, "s1")
    conf = os.path.join(tmp, "o.conf")
    with open(conf, "w") as f:
        f.write(f"[output]\nsyslog = unix:{sock_path}\nmetrics = 127.0.0.1:{port}\n"
                f"[prevent]\nexec_path = {mnt}\n")
    ward = Ward(["run", "--watch", share, "--state", state, "--config", conf], tmp)
    url = f"http://127.0.0.1:{port}/metrics"

    def metric(name, label=None):
        body = urllib.request.urlopen(url, timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith("#"):
                continue
            key, _, val = line.rpartition(" ")
            if key == name or (label and key == f'{name}{{{label}}}'):
                return float(val)
        return None

    c0 = metric("ward_events_total", 'kind="create"')
    c.check(c0 is not None, "metrics endpoint serves ward_events_total{kind=create}", str(c0))
    for i in range(25):
        with open(os.path.join(share, f"new-{i}.txt"), "w") as f:
            f.write("x")
    wait_for(lambda: (metric("ward_events_total", 'kind="create"') or 0) >= (c0 or 0) + 25, 10)
    c1 = metric("ward_events_total", 'kind="create"')
    c.check(c1 is not None and c0 is not None and c1 - c0 >= 25, "create counter moved by the 25 creations",
            f"{c0} -> {c1}")
    i0 = metric("ward_incidents_total")
    r = subprocess.run([RANSIM, "--mode", "babuk-esxi", "--root", data, "--log", os.path.join(tmp, "a.log")],
                       capture_output=True, timeout=60)
    c.check(r.returncode == -signal.SIGKILL, "attacker stopped", str(r.returncode))
    wait_for(lambda: (metric("ward_incidents_total") or 0) > (i0 or 0), 10)
    c.check((metric("ward_incidents_total") or 0) == (i0 or 0) + 1, "incident counter moved by one")
    c.check((metric("ward_actors_stopped_total") or 0) >= 1, "actors stopped counter moved")
    # syslog: RFC 5424 with structured data, the JSON alert as MSG
    msgs = []
    end = time.time() + 5
    while time.time() < end and not msgs:
        try:
            msgs.append(rx.recv(65536).decode("utf-8", "replace"))
        except socket.timeout:
            pass
    c.check(len(msgs) >= 1, "an alert reached the local syslog socket")
    if msgs:
        m = re.match(r"^<(\d+)>1 (\S+) (\S+) ward (\S+) (\S+) (\[.*?\]) (.*)$", msgs[0], re.S)
        c.check(m is not None, "RFC 5424 header and structured data", msgs[0][:200])
        if m:
            c.check(RFC3339.match(m.group(2)) is not None or "T" in m.group(2), "syslog timestamp")
            c.check("incident=" in m.group(6), "structured data names the incident", m.group(6))
            body = m.group(7).lstrip("\ufeff")
            a = json.loads(body)
            c.check(ecs_valid(a) == [], "syslog alert is valid ECS", str(ecs_valid(a)))
    alerts = [json.loads(x) for x in open(os.path.join(state, "alerts.json")) if x.strip()]
    c.check(len(alerts) >= 1, "the alert is in the JSON file")
    for a in alerts:
        p = ecs_valid(a)
        c.check(p == [], f"alert {a.get('ward', {}).get('incident', {}).get('id')} valid ECS", str(p))
    c.check(any(a.get("process", {}).get("hash", {}).get("sha256") for a in alerts), "alert carries process.hash.sha256")
    ward.stop()
    rx.close()

    # OCSF on request
    data2 = attack_tree(os.path.join(share, "second"))
    s2 = os.path.join(tmp, "s2")
    conf2 = os.path.join(tmp, "ocsf.conf")
    with open(conf2, "w") as f:
        f.write(f"[output]\nalerts_format = ocsf\n[prevent]\nexec_path = {mnt}\n")
    ward = Ward(["run", "--watch", share, "--state", s2, "--config", conf2], tmp)
    subprocess.run([RANSIM, "--mode", "header", "--root", data2], capture_output=True, timeout=60)
    wait_for(lambda: os.path.exists(os.path.join(s2, "alerts.json")) and os.path.getsize(os.path.join(s2, "alerts.json")) > 0, 10)
    ward.stop()
    o = [json.loads(x) for x in open(os.path.join(s2, "alerts.json")) if x.strip()]
    c.check(len(o) >= 1 and o[0].get("class_uid") == 2004 and o[0].get("category_uid") == 2
            and isinstance(o[0].get("time"), int) and o[0].get("metadata", {}).get("product", {}).get("name") == "ward",
            "OCSF Detection Finding (class 2004)", json.dumps(o[0])[:300] if o else "none")

    # a dead TCP receiver: killed mid-attack; detection, stopping and the vault go on
    tport = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", tport))
    srv.listen(4)
    got = []
    def serve():
        try:
            conn, _ = srv.accept()
            conn.settimeout(1)
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                got.append(b)
        except OSError:
            pass
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    data3 = attack_tree(os.path.join(share, "third"))
    s3 = os.path.join(tmp, "s3")
    conf3 = os.path.join(tmp, "tcp.conf")
    with open(conf3, "w") as f:
        f.write(f"[output]\nsyslog = tcp:127.0.0.1:{tport}\n[prevent]\nexec_path = {mnt}\n[canary]\nenabled = no\n")
    ward = Ward(["run", "--watch", share, "--state", s3, "--config", conf3], tmp)
    srv.close()  # the receiver dies before the attack: nothing may wait on it
    # a paced attack: the first files while the receiver is gone
    r = subprocess.run([RANSIM, "--mode", "slow", "--delay-ms", "50", "--root", data3, "--log", os.path.join(tmp, "b.log")],
                       capture_output=True, timeout=120)
    c.check(r.returncode == -signal.SIGKILL, "attacker stopped with the alert receiver dead", str(r.returncode))
    st = json.loads(subprocess.run([WARD, "status", "--state", s3, "--json"], capture_output=True, text=True).stdout)
    c.check(st.get("incidents") == 1 and st.get("vault_saved", 0) >= 1, "incident recorded and the vault saved originals",
            json.dumps({k: st.get(k) for k in ("incidents", "vault_saved", "vault_failures")}))
    c.check(st.get("vault_failures") == 0, "no vault failure while the receiver was dead")
    lines = len(open(os.path.join(tmp, "b.log")).readlines())
    c.check(lines <= 10, "files modified before the stop", str(lines))
    # SIGHUP: reloads without losing events
    before = st["events"]["create"]
    burst = os.path.join(share, "burst")
    os.mkdir(burst)
    def writer():
        for i in range(300):
            with open(os.path.join(burst, f"b{i}"), "w") as f:
                f.write("x")
    th2 = threading.Thread(target=writer)
    th2.start()
    for _ in range(3):
        ward.p.send_signal(signal.SIGHUP)
        time.sleep(0.05)
    th2.join()
    wait_for(lambda: json.loads(subprocess.run([WARD, "status", "--state", s3, "--json"], capture_output=True,
                                               text=True).stdout)["events"]["create"] >= before + 300, 10)
    st = json.loads(subprocess.run([WARD, "status", "--state", s3, "--json"], capture_output=True, text=True).stdout)
    c.check(st["events"]["create"] >= before + 300 and st["overflows"] == 0, "no event lost across SIGHUP",
            f"{st['events']['create'] - before}")
    c.check(ward.p.poll() is None and "SIGHUP" in ward.stderr(), "ward reloaded and kept running")
    c.check(ward.stop() == 0, "ward stops cleanly")

c.done()
