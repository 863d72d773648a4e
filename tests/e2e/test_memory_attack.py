#!/usr/bin/python3
"""Memory an attacker cannot pin (issue 9, item 2).

Hundreds of raw attacker connections park out-of-order bytes near the right
edge of their windows, and 150 Linux clients ask for a 300 kB body and never
read it, on an appliance with a small buffer pool (8 MiB).  Meanwhile 100
real Linux clients complete requests.  All 100 succeed, the chunk pool never
runs dry, and the counters show what pressure did: out-of-order data kept
sparse or pruned, stalled flows reclaimed.  (On the old code two segments
per attacker pinned a chain of chunks up to the far byte: ~128 attackers
drained the pool and every flow on the lcore stopped receiving.)"""
import os
import re
import time

from harness import Appliance, check, sh

ATTACK = r"""
import sys, time
sys.path.insert(0, %r)
from rawpeer import *
IFACE, TMAC, N = %r, mac_aton(%r), %d
MY = mac_aton("02:00:5e:00:53:02")
w = Wire(IFACE)
def addr(i): return "198.18.0.%%d" %% (100 + i %% 150)
w.send_paced([build(MY, TMAC, addr(i), "198.18.0.2", 30000 + i, 80, 5000, 0, SYN) for i in range(N)])
sa = {}
def have(got):
    for s in got:
        if s.flags & (SYN | ACK) == SYN | ACK and s.dmac == MY:
            sa[(s.dst, s.dport)] = s
    return len(sa) >= N
w.recv_all(30, have)
frames = []
for (a, p), s in sa.items():
    frames.append(build(MY, TMAC, a, "198.18.0.2", p, 80, 5001, s.seq + 1, ACK))
    # Two out-of-order bytes far to the right of RCV.NXT (window 65535).
    frames.append(build(MY, TMAC, a, "198.18.0.2", p, 80, 5001 + 65000, s.seq + 1, ACK, b"x"))
    frames.append(build(MY, TMAC, a, "198.18.0.2", p, 80, 5001 + 30000, s.seq + 1, ACK, b"y"))
w.send_paced(frames)
print("attackers", len(sa))
"""

HOGS = r"""
import socket, time
socks = []
for i in range(150):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("198.18.0.2", 8080))
    s.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
    socks.append(s)
print("hogs", len(socks), flush=True)
time.sleep(%d)
"""

CLIENTS = r"""
import socket, threading
ok = [0]
lock = threading.Lock()
def one(i):
    try:
        s = socket.create_connection(("198.18.0.2", 80), timeout=20)
        s.sendall(b"GET /%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % i)
        data = b""
        while True:
            c = s.recv(65536)
            if not c: break
            data += c
        s.close()
        if data.startswith(b"HTTP/1.1 200 OK"):
            with lock: ok[0] += 1
    except Exception as e:
        print("client", i, e)
ts = [threading.Thread(target=one, args=(i,)) for i in range(100)]
for k in range(0, 100, 10):
    for t in ts[k:k + 10]: t.start()
    for t in ts[k:k + 10]: t.join()
print("ok", ok[0])
"""

extra = ["--buffer-chunks", "4096", "--listen", "198.18.0.2:8080/http,body=300000"]
with Appliance(listen=["198.18.0.2:80/http"], extra=extra) as a:
    here = os.path.dirname(os.path.abspath(__file__))
    tmac = re.search(r"lladdr ([0-9a-f:]{17})", sh(f"ip netns exec {a.ns} ip neigh show 198.18.0.2").stdout).group(1)
    a.cli("clear tcp stats")
    r = a.python(ATTACK % (here, a.tap, tmac, 400), timeout=120)
    n_att = int(re.search(r"attackers (\d+)", r.stdout.decode()).group(1))
    check(n_att >= 390, f"{n_att} attacker connections parked far out-of-order bytes")
    # The last frames may still be on their way through the TAP.
    st = a.wait_for(lambda: (lambda s: s if s["ooo_segments"] >= 2 * n_att - 20 else None)(a.stats()),
                    timeout=10, what="the attackers' segments to arrive")
    check(st["ooo_segments"] >= 2 * n_att - 20, f"their segments were taken as out-of-order data ({st['ooo_segments']})")
    hogs = subprocess_popen = __import__("subprocess").Popen(
        ["ip", "netns", "exec", a.ns, "/usr/bin/python3", "-c", HOGS % 40], stdout=__import__("subprocess").PIPE)
    try:
        time.sleep(4)  # the hogs fill their windows; the pool comes under pressure
        r = a.python(CLIENTS, timeout=200)
        out = r.stdout.decode()
        ok = int(re.search(r"ok (\d+)", out).group(1))
        check(ok == 100, f"100 real clients completed their requests during the attack ({ok})")
    finally:
        hogs.kill()
        hogs.wait()
    st = a.stats()
    print({k: st[k] for k in ("chunk_alloc_failures", "rcv_buf_full", "mem_pressure_entered", "ooo_pruned_ranges",
                              "ooo_pressure_dropped", "mem_reclaimed_stalled", "mem_reclaimed_orphans",
                              "mem_reclaimed_bytes", "snd_pool_exhausted")})
    check(st["chunk_alloc_failures"] == 0 and st["rcv_buf_full"] == 0, "the chunk pool never ran dry")
    check(st["mem_pressure_entered"] >= 1, "the pool entered pressure")
    check(st["mem_reclaimed_stalled"] + st["mem_reclaimed_orphans"] > 0 or st["ooo_pruned_ranges"] > 0,
          "the counters show what was reclaimed or pruned")
    a.quit()
print("all ok")
