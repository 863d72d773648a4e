#!/usr/bin/python3
"""The traffic of a mixed workload, captured in the namespace and read by
Wireshark's TCP analysis with checksum validation on: no anomaly beyond the
allowlist, and every segment tcpterm sent has a good checksum."""
import os
import subprocess
from harness import Appliance, check

# Flags that are normal here.  The bulk echo is flow-controlled end to end:
# the client writes 1 MiB before it has read much back, so tcpterm's send
# queue fills, the echo stops reading, and its receive window closes and
# reopens (window_full / zero_window / window_update are flow control doing
# its job, RFC 9293 3.8.6).  Nothing else -- no retransmission, duplicate
# ACK, out-of-order or lost segment -- is expected on a lossless TAP.
ALLOW = {"tcp.analysis.window_update", "tcp.analysis.window_full", "tcp.analysis.zero_window"}

WORK = r"""
import hashlib, socket, threading
data = hashlib.shake_256(b"x").digest(1 << 20)
s = socket.create_connection(("198.18.0.2", 7))
got = bytearray()
def rd():
    while len(got) < len(data):
        c = s.recv(65536)
        if not c: break
        got.extend(c)
t = threading.Thread(target=rd); t.start()
s.sendall(data); t.join(); s.close()
u = socket.create_connection(("198.18.0.2", 9)); u.sendall(data); u.close()
for i in range(20):
    h = socket.create_connection(("198.18.0.2", 80))
    h.sendall(b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nConnection: close\r\n\r\n")
    while h.recv(65536): pass
    h.close()
print(bytes(got) == data)
"""

with Appliance(listen=["198.18.0.2:7/echo", "198.18.0.2:9/discard", "198.18.0.2:80/http"],
               msl_ms=1000, capture=True) as a:
    r = a.python(WORK)
    check(r.stdout.decode().strip() == "True", "workload completed")
    a.run(["curl", "-s", "-o", "/dev/null", "http://198.18.0.2/"])
    a.quit()
pcap = a.pcap
try:
    n = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.number"], capture_output=True, text=True)
    frames = len(n.stdout.split())
    check(frames > 1000, f"captured {frames} frames")
    ANOMALIES = ["retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order",
                 "lost_segment", "ack_lost_segment", "duplicate_ack", "zero_window", "zero_window_probe",
                 "zero_window_probe_ack", "window_full", "window_update", "reused_ports", "keep_alive",
                 "keep_alive_ack"]
    cols = subprocess.run(["tshark", "-r", pcap, "-o", "tcp.check_checksum:TRUE", "-T", "fields",
                           "-E", "separator=|", "-e", "frame.number", "-e", "ip.src"]
                          + sum([["-e", "tcp.analysis." + x] for x in ANOMALIES], []),
                          capture_output=True, text=True).stdout.strip().split("\n")
    found = {}
    for row in cols:
        f = row.split("|")
        for i, x in enumerate(ANOMALIES):
            if len(f) > i + 2 and f[i + 2]:
                found.setdefault("tcp.analysis." + x, []).append((f[0], f[1]))
    for k, v in sorted(found.items()):
        print(f"  {k}: {len(v)} (first frames {v[:3]})")
    bad = set(found) - ALLOW
    check(not bad, f"no TCP anomaly beyond the allowlist {sorted(ALLOW)} (found {sorted(found)})")
    cs = subprocess.run(["tshark", "-r", pcap, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-Y",
                         "ip.src == 198.18.0.2 && (tcp.checksum.status == 0 || ip.checksum.status == 0)"],
                        capture_output=True, text=True).stdout.strip()
    check(cs == "", "every segment from tcpterm has valid IPv4 and TCP checksums")
    good = subprocess.run(["tshark", "-r", pcap, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-Y",
                           "ip.src == 198.18.0.2 && tcp.checksum.status == 1"], capture_output=True, text=True).stdout
    check(len(good.split("\n")) > 500, "checksums were actually verified (status good)")
    print("all ok")
finally:
    os.unlink(pcap)  # a test leaves nothing behind
