#!/usr/bin/python3
"""The operator's view (issue 13): --http-stats serves /metrics (Prometheus),
/stats.json and a live page, from the control plane, while real Linux
clients use the appliance.
  A. /metrics agrees with `show tcp states`; promtool check metrics passes;
     the backend and pool families are there
  B. /stats.json agrees too; bad requests get 400/404/405/431
  C. the page in headless Chromium: a screenshot, and the rendered DOM
     holds the per-state figures and the health verdict (fails if the page
     renders nothing)
  D. hostile clients (slowloris, oversized and endless requests, too many
     connections) do not stall the control plane: the CLI keeps answering,
     the loris are cut off after the time-out, /metrics answers again
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Appliance, check, sh  # noqa: E402

URL = "http://127.0.0.1:9100"


def get(a, path, timeout=10):
    r = a.run(["curl", "-s", "-m", str(timeout), "-w", "\n%{http_code}", URL + path], check=False)
    body, _, code = r.stdout.decode().rpartition("\n")
    return int(code or 0), body


def metric_sum(text, name, **labels):
    total, seen = 0, False
    for line in text.split("\n"):
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def main():
    extra = ["--http-stats", "127.0.0.1:9100", "--pool", "web=198.18.0.11:8080,check=tcp,interval=500",
             "--listen", "198.18.0.2:81/proxy,pool=web"]
    with Appliance(listen=["198.18.0.2:80/http"], extra=extra) as a:
        # Real clients: 40 requests the appliance closes first (TIME-WAIT
        # here), and 5 connections held open (ESTABLISHED).
        a.run("for i in $(seq 40); do curl -s -H 'Connection: close' http://198.18.0.2/ >/dev/null; done")
        held = subprocess.Popen(["ip", "netns", "exec", a.ns, "/usr/bin/python3", "-c", """
import socket, time
s = [socket.create_connection(("198.18.0.2", 80)) for _ in range(5)]
print("open", flush=True)
time.sleep(120)
"""], stdout=subprocess.PIPE)
        try:
            held.stdout.readline()
            scenarios(a)
        finally:
            held.kill()


def scenarios(a):
    # ---- A. /metrics --------------------------------------------------
    # A scrape may be answered from a snapshot up to 0.5 s old (one control
    # query per interval, however many scrapers): let the clients settle.
    time.sleep(1.0)
    code, m = get(a, "/metrics")
    st = a.states()
    check(code == 200 and m.startswith("# HELP"), f"/metrics answers 200 in the text format ({len(m)} bytes)")
    for state in ("LISTEN", "ESTABLISHED", "TIME-WAIT"):
        v = metric_sum(m, "tcpterm_tcp_connections", state=state)
        want = st[state] if state != "LISTEN" else st[state] * 1  # one worker
        check(v == want, f"tcpterm_tcp_connections{{state=\"{state}\"}} = {v}, show tcp states says {st[state]}")
    check(metric_sum(m, "tcpterm_tcp_tw_entered_total") >= 40, "TIME-WAIT entries as a _total counter")
    check(metric_sum(m, "tcpterm_drops_total", reason="tcp_bad_checksum") is not None, "drops by reason")
    check(metric_sum(m, "tcpterm_lcore_busy_ratio") is not None and metric_sum(m, "tcpterm_mbufs_in_use") > 0,
          "busy share per lcore and mbufs in use")
    check(metric_sum(m, "tcpterm_backend_up", pool="web") is not None and
          metric_sum(m, "tcpterm_pool_proxied_total", pool="web") is not None, "backend and pool families")
    check("# TYPE tcpterm_tcp_passive_opens_total counter" in m, "HELP and TYPE lines, counters typed")
    r = subprocess.run(["promtool", "check", "metrics"], input=m, capture_output=True, text=True)
    check(r.returncode == 0, f"promtool check metrics passes ({(r.stdout + r.stderr).strip()[:300]})")

    # ---- B. /stats.json and bad requests --------------------------------
    code, j = get(a, "/stats.json?history=1")
    d = json.loads(j)
    check(code == 200 and d["states"]["TIME-WAIT"] == st["TIME-WAIT"] and d["states"]["ESTABLISHED"] == st["ESTABLISHED"],
          "/stats.json agrees with show tcp states")
    check(isinstance(d["history"], list) and d["lcores"] and "tcp_bad_checksum" in d["drops"],
          "/stats.json: history, lcores, drops")
    # Drained (the page is read drained too, below): unhealthy, as /healthz says.
    a.cli("set health drain on")
    code, j = get(a, "/stats.json")
    d = json.loads(j)
    hz = a.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", URL + "/healthz"], check=False).stdout
    bad = [c["name"] for c in d["health"]["checks"] if not c["ok"]]
    check(d["health"]["ok"] is False and "operator" in bad and hz == b"503",
          f"/stats.json carries the /healthz verdict (unhealthy: {bad}; /healthz {hz.decode()})")
    check(get(a, "/nope")[0] == 404, "an unknown path gets 404")
    r = a.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", URL + "/metrics"], check=False)
    check(r.stdout == b"405", "POST gets 405")
    raw = r"""
import socket, sys
def ask(data):
    s = socket.create_connection(("127.0.0.1", 9100)); s.sendall(data)
    s.settimeout(10); r = b""
    while True:
        d = s.recv(4096)
        if not d: break
        r += d
    return r.split(b"\r\n")[0].decode()
print(ask(b"GARBAGE\r\n\r\n"))
print(ask(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n"))
"""
    out = a.python(raw).stdout.decode().split("\n")
    check(out[0].startswith("HTTP/1.1 400") and out[1].startswith("HTTP/1.1 431"),
          f"a malformed request gets 400, an oversized one 431 ({out[:2]})")

    # ---- C. the page in headless Chromium ---------------------------------
    shot = f"/tmp/{a.ns}-page.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--virtual-time-budget=4000", "--window-size=1100,900"]
    a.run(cmd + [f"--screenshot={shot}", URL + "/"], check=False, timeout=120)
    check(os.path.exists(shot) and os.path.getsize(shot) > 10000, f"a screenshot of the page ({shot})")
    os.unlink(shot)
    st = a.states()
    dom = a.run(cmd + ["--dump-dom", URL + "/"], check=False, timeout=120).stdout.decode()
    cells = {s: re.search(rf'id="state-{s}">(\d+)<', dom) for s in ("TIME-WAIT", "ESTABLISHED", "LISTEN")}
    check(all(cells.values()), "the rendered page holds a figure for every state")
    check(int(cells["TIME-WAIT"].group(1)) == st["TIME-WAIT"] and int(cells["ESTABLISHED"].group(1)) == st["ESTABLISHED"],
          f"...and they are the appliance's (TIME-WAIT {cells['TIME-WAIT'].group(1)}, ESTABLISHED {cells['ESTABLISHED'].group(1)})")
    check("198.18.0.11:8080" in dom, "the backends table is drawn when pools exist")
    m = re.search(r'<span id="health" class="([a-z]+)">([^<]*)<', dom)
    check(m and m.group(1) == "fail" and "unhealthy: " in m.group(2) and "operator (drained" in m.group(2),
          f"the page's header shows the health verdict and why ({m.group(2) if m else None})")
    a.cli("set health drain off")

    # ---- D. hostile clients ------------------------------------------------
    loris = subprocess.Popen(["ip", "netns", "exec", a.ns, "/usr/bin/python3", "-c", r"""
import socket, time, sys
socks = []
for i in range(40):
    try:
        s = socket.create_connection(("127.0.0.1", 9100), timeout=5); s.sendall(b"GET /metrics HTTP/1.1\r\n"); socks.append(s)
    except OSError: pass
print(len(socks), flush=True)
t = time.time(); closed = 0
while time.time() - t < 12 and closed < len(socks):
    closed = 0
    for s in socks:
        try:
            s.sendall(b"X")            # one byte a second: never ends the head
            s.settimeout(0.01)
            if s.recv(4096) == b"": closed += 1
        except (socket.timeout, BlockingIOError): pass
        except OSError: closed += 1
    time.sleep(1)
print(closed, round(time.time() - t, 1), flush=True)
"""], stdout=subprocess.PIPE)
    n = int(loris.stdout.readline())
    t0 = time.time()
    states = a.cli("show tcp states")
    dt = time.time() - t0
    check("TIME-WAIT" in states and dt < 2, f"with {n} slow clients on the endpoint the CLI answers in {dt:.2f} s")
    code, m = get(a, "/metrics")
    check(code == 200 and "tcpterm_up 1" in m,
          "while they are held, /metrics answers too (the oldest connection of their address makes room)")
    closed, took = loris.stdout.readline().decode().split()
    loris.wait(timeout=30)
    check(int(closed) >= 32, f"the slow clients were cut off ({closed} closed within {took} s)")
    code, m = get(a, "/metrics")
    # From one address 8 are held at most: the others were closed as newer
    # ones came (evicted), those 8 by the 5 s limit (timeouts), bar the one
    # the /metrics request above displaced.
    timeouts = re.search(r"^tcpterm_http_stats_timeouts_total (\d+)", m, re.M)
    evicted = re.search(r'^tcpterm_http_stats_evicted_total\{reason="per_source"\} (\d+)', m, re.M)
    check(code == 200 and "tcpterm_up 1" in m and timeouts and evicted and
          int(timeouts.group(1)) >= 7 and int(timeouts.group(1)) + int(evicted.group(1)) >= 40,
          f"after them /metrics answers, and counts how each was cut off "
          f"({timeouts and timeouts.group(0)}; {evicted and evicted.group(0)})")
    too_large = re.search(r"^tcpterm_http_stats_too_large_total (\d+)", m, re.M)
    check(too_large and int(too_large.group(1)) >= 1,
          f"the oversized request of B is counted ({too_large and too_large.group(0)})")
    longest = re.findall(r'^tcpterm_lcore_longest_poll_seconds\{lcore="\d+"\} ([0-9.e+-]+)$', m, re.M)
    check(longest and all(float(x) > 0 for x in longest),
          f"each lcore's longest poll is exported ({longest})")
    a.quit()


main()
print("all ok")
