#!/usr/bin/python3
"""Two worker lcores on one port: a two-queue TAP, each worker polling its
own queue with its own flow table, wheel and TIME-WAIT records.  The kernel
spreads the namespace's connections over the TAP's queues by flow hash, and
sends a flow's later segments to the queue its replies came from; every
connection must complete on the lcore that took its SYN, with no segment
finding a flow table that does not hold its flow (that would show as an RST,
an ACK to a listener or a failed cookie)."""
import re
from harness import Appliance, check

N = 600


def per_lcore(a):
    """show lcores, as {lcore: {counter: value}}."""
    out, cur = {}, None
    for line in a.cli("show lcores").split("\n"):
        m = re.match(r"^lcore (\d+) \(queue (\d+)\):", line)
        if m:
            cur = out.setdefault(int(m.group(1)), {"queue": int(m.group(2))})
            continue
        m = re.match(r"^\s+([a-z_]+):\s+(\d+)\s*$", line)
        if m and cur is not None:
            cur[m.group(1)] = int(m.group(2))
    return out


CLIENT = """
import socket, sys
from concurrent.futures import ThreadPoolExecutor
def one(i):
    s = socket.create_connection(("198.18.0.2", 80), timeout=10)
    s.sendall(b"GET /%d HTTP/1.0\\r\\n\\r\\n" % i)
    data = b""
    while True:
        c = s.recv(65536)
        if not c: break
        data += c
    s.close()
    head, _, body = data.partition(b"\\r\\n\\r\\n")
    return head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 16" in head and len(body) == 16
with ThreadPoolExecutor(16) as ex:
    ok = sum(ex.map(one, range(N_CONN)))
print(ok)
"""

with Appliance(listen=["198.18.0.2:80/http,body=16"], msl_ms=60000, workers=2) as a:
    info = a.cli("show port info all")
    check("Queues: 2" in info, "the TAP has one queue per worker (show port info: Queues: 2)")
    lc = per_lcore(a)
    check(len(lc) == 2 and sorted(v["queue"] for v in lc.values()) == [0, 1],
          f"two worker lcores, queues 0 and 1 ({sorted(lc)})")

    r = a.python(CLIENT.replace("N_CONN", str(N)))
    ok = int(r.stdout.decode().strip() or 0)
    check(ok == N, f"{N} HTTP/1.0 connections over two queues, every response whole ({ok})")

    # HTTP/1.0: the appliance closes first, so each connection ends in a
    # TIME-WAIT record on the lcore that owned it.
    a.wait_for(lambda: sum(v.get("time_wait", 0) for v in per_lcore(a).values()) == N,
               what=f"{N} TIME-WAIT records across the lcores")
    lc = per_lcore(a)
    tw = {k: v["time_wait"] for k, v in lc.items()}
    check(all(v > 0 for v in tw.values()), f"both lcores terminated connections (TIME-WAIT per lcore {tw})")
    check(all(v["rx_packets"] > 0 and v["tx_packets"] > 0 for v in lc.values()),
          "both lcores received and sent on their own queue")
    st = a.stats()
    for k in ("resets_out", "rst_to_unknown", "ack_to_listener", "syncookies_failed"):
        check(st.get(k, 0) == 0, f"no segment reached an lcore without its flow ({k} {st.get(k)})")
    check(st["passive_opens"] == N and st["tw_entered"] == N,
          f"every SYN opened one flow, every flow entered TIME-WAIT ({st['passive_opens']}, {st['tw_entered']})")

    # A second wave from the same client reuses the kernel's ports, landing on
    # TIME-WAIT records that must be found on their own lcore (a SYN that
    # reached the other lcore would open a duplicate flow or be refused).
    r = a.python(CLIENT.replace("N_CONN", str(N)))
    ok = int(r.stdout.decode().strip() or 0)
    check(ok == N, f"a second wave of {N} completes too ({ok})")
    st = a.stats()
    check(st["resets_out"] == 0 and st["rst_to_unknown"] == 0, "no resets after the second wave")
    a.quit()
