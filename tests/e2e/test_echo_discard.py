#!/usr/bin/python3
"""16 MiB byte-exact through echo, a 16 MiB upload to discard; the client
closes first, so the appliance passes CLOSE-WAIT and LAST-ACK and keeps no
TIME-WAIT."""
from harness import Appliance, check

PEER = r"""
import hashlib, os, socket, sys, threading
size = 16 * 1024 * 1024
data = hashlib.shake_256(b"tcpterm").digest(size)
s = socket.create_connection(("198.18.0.2", 7), timeout=30)
got = bytearray()
def reader():
    while len(got) < size:
        c = s.recv(1 << 20)
        if not c: break
        got.extend(c)
t = threading.Thread(target=reader); t.start()
view = memoryview(data)
for i in range(0, size, 65536):
    s.sendall(view[i:i + 65536])
t.join(120)
s.shutdown(socket.SHUT_WR)
tail = s.recv(10)
s.close()
print("echo", len(got), bytes(got) == data, tail == b"")
u = socket.create_connection(("198.18.0.2", 9), timeout=30)
for i in range(0, size, 65536):
    u.sendall(view[i:i + 65536])
u.shutdown(socket.SHUT_WR)
print("discard", u.recv(10) == b"")
u.close()
"""

with Appliance(listen=["198.18.0.2:7/echo", "198.18.0.2:9/discard"], msl_ms=60000) as a:
    r = a.python(PEER, timeout=300)
    out = r.stdout.decode().split("\n")
    check(out[0] == f"echo {16 * 1024 * 1024} True True", f"16 MiB echoed byte-exact, then EOF ({out[0]})")
    check(out[1] == "discard True", "16 MiB uploaded to discard, then EOF")
    a.wait_for(lambda: a.states()["LAST-ACK"] == 0 and a.states()["CLOSE-WAIT"] == 0, what="both closed")
    st = a.stats()
    check(st["bytes_in"] >= 2 * 16 * 1024 * 1024, f"bytes_in counts both transfers ({st['bytes_in']})")
    check(st["entered_CLOSE-WAIT"] == 2 and st["entered_LAST-ACK"] == 2,
          "both passed through CLOSE-WAIT and LAST-ACK")
    check(st["closed_passive"] == 2, "both ended by the ACK of our FIN")
    check(st["tw_entered"] == 0 and a.states()["TIME-WAIT"] == 0, "the passive closer holds no TIME-WAIT")
    check(a.counters("show tcp timewait")["records"] == 0, "no TIME-WAIT records")
    a.quit()
print("all ok")
