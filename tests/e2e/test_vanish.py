#!/usr/bin/python3
"""A client that vanishes after our FIN: the appliance's FIN-WAIT-2 is
reclaimed after --fin-wait-2-timeout-ms and nothing leaks.  A second client
vanishes before it ACKs our FIN: FIN retries reclaim FIN-WAIT-1."""
import time
from harness import Appliance, check

PEER = r"""
import socket, subprocess, time
s = socket.create_connection(("198.18.0.2", 80), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
data = b""
while True:
    c = s.recv(4096)
    if not c: break
    data += c
# Give the kernel time to ACK the appliance's FIN (it may delay the ACK); then vanish.
time.sleep(0.3)
subprocess.run(["iptables", "-A", "OUTPUT", "-d", "198.18.0.2", "-p", "tcp", "--sport", str(s.getsockname()[1]), "-j", "DROP"], check=True)
s.close()
print(len(data) > 0)
"""

with Appliance(listen=["198.18.0.2:80/http"], msl_ms=60000,
               extra=["--fin-wait-2-timeout-ms", "2000", "--orphan-retries", "3"]) as a:
    t0 = time.time()
    r = a.python(PEER)
    check(r.stdout.decode().strip() == "True", "the response arrived before the client vanished")
    s = a.states()
    check(s["FIN-WAIT-2"] == 1, "the appliance waits in FIN-WAIT-2")
    a.wait_for(lambda: a.states()["FIN-WAIT-2"] == 0, timeout=10, what="FIN-WAIT-2 reclaimed")
    took = time.time() - t0
    check(took >= 1.9, f"not before the 2 s timeout ({took:.1f} s)")
    st = a.stats()
    check(st["timeout_fin_wait_2"] == 1, "timeout_fin_wait_2 counted")
    check(all(v == 0 for k, v in a.states().items() if k != "LISTEN"), "no flow left")
    lc = a.counters("show lcores")
    check(lc["flows"] == 0, "no TCB held")

    # Vanish before ACKing our FIN: the client's ACKs never leave.
    PEER2 = r"""
import socket, subprocess
s = socket.create_connection(("198.18.0.2", 80), timeout=5)
port = s.getsockname()[1]
s.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
subprocess.run(["iptables", "-A", "OUTPUT", "-d", "198.18.0.2", "-p", "tcp", "--sport", str(port), "-j", "DROP"], check=True)
print(s.recv(100)[:15].decode())
"""
    r = a.python(PEER2)
    check(r.stdout.decode().strip() == "HTTP/1.1 200 OK", "second client got its response")
    a.wait_for(lambda: a.states()["FIN-WAIT-1"] == 1, timeout=5, what="FIN-WAIT-1")
    check(True, "FIN unacknowledged: FIN-WAIT-1")
    a.wait_for(lambda: a.states()["FIN-WAIT-1"] == 0, timeout=30, every=0.5, what="FIN retries exhausted")
    st = a.stats()
    check(st["timeout_fin_wait_1"] == 1, "timeout_fin_wait_1 counted after the FIN retries")
    check(all(v == 0 for k, v in a.states().items() if k != "LISTEN"), "no flow left")
    a.quit()
print("all ok")
