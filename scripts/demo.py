#!/usr/bin/python3
"""The demo's driver: load generators in the namespace, a live per-state
view read from tcpterm's CLI once a second, and a summary."""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import Appliance  # noqa: E402

LOAD_S, MSL_MS = 20, 4000
STATES = ["SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING",
          "LAST-ACK", "TIME-WAIT"]
SHORT = ["SYN-R", "ESTAB", "FW1", "FW2", "C-WAIT", "CLSNG", "L-ACK", "T-WAIT"]

CHURN = r"""
import socket, threading, time
end = time.time() + %d
n = [0]
def w():
    while time.time() < end:
        s = socket.create_connection(("198.18.0.2", 80), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        while s.recv(4096): pass
        s.close(); n[0] += 1
        time.sleep(0.002)
ts = [threading.Thread(target=w) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(n[0])
""" % LOAD_S

ECHO = r"""
import hashlib, socket, threading, time
size = 64 << 20
data = hashlib.shake_256(b"demo").digest(1 << 20) * 64
s = socket.create_connection(("198.18.0.2", 7))
got = bytearray()
def rd():
    while len(got) < size:
        c = s.recv(1 << 20)
        if not c: break
        got.extend(c)
t = threading.Thread(target=rd); t.start()
t0 = time.time()
mv = memoryview(data)
for i in range(0, size, 1 << 16):
    s.sendall(mv[i:i + (1 << 16)])
t.join(); s.close()
print(len(got), bytes(got) == data, round(size / (time.time() - t0) / 1e6, 1))
"""

CURL = r"""
end=$((SECONDS+%d)); n=0
while [ $SECONDS -lt $end ]; do
  curl -s -o /dev/null http://198.18.0.2/k1 -o /dev/null http://198.18.0.2/k2 && n=$((n+1))
  sleep 0.05
done
echo $n
""" % LOAD_S


def main():
    print("tcpterm demo: Linux (198.18.0.1) <-> tcpterm (198.18.0.2) over a TAP in a namespace")
    print(f"listeners: http on :80, echo on :7; MSL {MSL_MS} ms, so TIME-WAIT lasts {2 * MSL_MS // 1000} s\n")
    results = {}
    with Appliance(listen=["198.18.0.2:80/http,body=512", "198.18.0.2:7/echo"], msl_ms=MSL_MS,
                   name=f"ttdemo{os.getpid() % 10000}") as a:
        def bg(name, cmd):
            def run():
                r = a.run(cmd, timeout=120, check=False)
                results[name] = r.stdout.decode().strip()
            t = threading.Thread(target=run)
            t.start()
            return t
        threads = [bg("churn", ["/usr/bin/python3", "-c", CHURN]),
                   bg("echo", ["/usr/bin/python3", "-c", ECHO]),
                   bg("curl", ["bash", "-c", CURL])]
        print("   t  " + " ".join(f"{s:>7}" for s in SHORT) + "      cps  closes/s")
        prev = a.stats()
        t0 = time.time()
        peak_tw = 0
        tick = 0
        while True:
            tick += 1
            time.sleep(max(0, t0 + tick - time.time()))
            s = a.states()
            st = a.stats()
            opens = st["passive_opens"] - prev["passive_opens"]
            closes = sum(st[k] - prev[k] for k in ("tw_entered", "closed_passive", "closed_reset",
                                                   "closed_abort", "closed_timeout"))
            prev = st
            peak_tw = max(peak_tw, s["TIME-WAIT"])
            print(f"{tick:4d}s " + " ".join(f"{s[x]:7d}" for x in STATES) + f" {opens:8d} {closes:9d}",
                  flush=True)
            busy = any(t.is_alive() for t in threads)
            if not busy and all(s[x] == 0 for x in STATES):
                break
            if tick > 90:
                break
        for t in threads:
            t.join()
        st = a.stats()
        s = a.states()
        out = a.quit()
    echo = results.get("echo", "").split()
    print("\n==== summary ====")
    print(f"connections served:        {st['passive_opens']}")
    print(f"  churn (appliance closes): {results.get('churn', '?')}  -> TIME-WAIT on tcpterm, peak {peak_tw}")
    print(f"  curl keep-alive (client closes): {results.get('curl', '?')} connections, 2 requests each")
    if len(echo) == 3:
        print(f"  bulk echo: {int(echo[0]) >> 20} MiB, byte-exact: {echo[1]}, {echo[2]} MB/s")
    print(f"TIME-WAIT entered: {st['tw_entered']} = expired after 2*MSL {st['tw_expired']}"
          f" + ended by a new SYN on the same port pair (RFC 6191) {st['tw_syn_reopened']}"
          f" + recycled at the cap {st['tw_recycled']}; drained: {s['TIME-WAIT'] == 0}")
    print(f"passive closes (CLOSE-WAIT -> LAST-ACK): {st['closed_passive']}")
    print(f"resets in/out: {st['resets_in']}/{st['resets_out']}, retransmits: {st['retransmits']}")
    for line in out.splitlines():
        if line.startswith("shutdown:"):
            print(line)
    print("namespace removed; demo done")


if __name__ == "__main__":
    main()
