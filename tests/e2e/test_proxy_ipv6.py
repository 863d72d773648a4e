#!/usr/bin/python3
"""The proxy across families with Linux backends (tests/e2e/lb_backend.py):
an IPv6 client (curl -6, Python AF_INET6) proxied to an IPv4 backend, an
IPv4 client to an IPv6 backend, and an IPv6 client to an IPv6 backend
reached through a --route gateway (neighbour discovery for the gateway on
the first SYN).  PROXY v1/v2 headers carry the client's own family and
address, parsed by the backend; TCP health checks run over IPv6."""
import os
import re
import subprocess
import time
from harness import Appliance, check, sh

HERE = os.path.dirname(os.path.abspath(__file__))
B4, B6, B6R = "198.18.0.11", "2001:2::11", "2001:2:1::5"   # the last one is behind the router 2001:2::1

LISTEN = ["[2001:2::2]:80/proxy,pool=to4", "198.18.0.2:81/proxy,pool=to6", "[2001:2::2]:82/proxy,pool=to6",
          "[2001:2::2]:83/proxy,pool=routed", "[2001:2::2]:84/proxy,pool=to4v1"]
POOLS = ["--pool", f"to4={B4}:7100,proxy-protocol=v2,interval=300,rise=1",
         "--pool", f"to4v1={B4}:7100,proxy-protocol=v1,interval=300,rise=1",
         "--pool", f"to6=[{B6}]:7100,proxy-protocol=v2,interval=300,rise=1",
         "--pool", f"routed=[{B6R}]:7100,proxy-protocol=v1,interval=300,rise=1",
         "--route", "2001:2:1::/64,via=2001:2::1"]

CLIENT = r"""
import socket, sys
host, port, fam = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if fam == "6" else socket.AF_INET)
s.settimeout(10)
s.bind(("2001:2::1" if fam == "6" else "198.18.0.1", 0))
s.connect((host, port))
s.sendall(b"hello through the proxy")
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    c = s.recv(4096)
    if not c: break
    got += c
print(s.getsockname()[1], got.decode())
"""


def backends(a):
    out = a.cli("show backends")
    return {m.group(1) + " " + m.group(2): m.group(3) for m in re.finditer(r"^(\S+)\s+(\S+:\d+)\s+(up|down|drain)", out, re.M)}


with Appliance(listen=LISTEN, extra=POOLS, ipv6=True) as a:
    log = f"/tmp/{a.ns}-backends6.log"
    open(log, "w").close()
    procs = []
    try:
        sh(f"ip netns exec {a.ns} ip addr add {B4}/24 dev {a.tap}")
        sh(f"ip netns exec {a.ns} ip -6 addr add {B6}/64 dev {a.tap} nodad")
        sh(f"ip netns exec {a.ns} ip -6 addr add {B6R}/64 dev lo nodad")  # the kernel routes for it
        time.sleep(0.5)
        for b in (B4, B6, B6R):
            procs.append(subprocess.Popen(["ip", "netns", "exec", a.ns, "/usr/bin/python3",
                                           os.path.join(HERE, "lb_backend.py"), b, log]))
        a.wait_for(lambda: open(log).read().count("ready") == 3, what="backends ready")
        bk = a.wait_for(lambda: (lambda b: b if len(b) == 4 and all(v == "up" for v in b.values()) else None)(backends(a)),
                        what="every backend up (TCP checks over both families)", timeout=30)
        check(f"to6 [{B6}]:7100" in bk and f"routed [{B6R}]:7100" in bk,
              f"show backends lists IPv6 backends in brackets, up after their checks: {sorted(bk)}")

        def through(host, port, fam):
            r = a.run(["/usr/bin/python3", "-c", CLIENT, host, str(port), fam], timeout=60)
            sport, line = r.stdout.decode().split(" ", 1)
            return int(sport), line

        sport, line = through("2001:2::2", 80, "6")
        check(line.startswith(f"v2 2001:2::1 {sport} 2001:2::2 80\nhello through the proxy"),
              f"IPv6 client -> IPv4 backend: PROXY v2 AF_INET6 names the client: {line.splitlines()[0]}")
        sport, line = through("2001:2::2", 84, "6")
        check(line.startswith(f"v1 2001:2::1 {sport} 2001:2::2 84\n"),
              f"IPv6 client -> IPv4 backend: PROXY v1 TCP6: {line.splitlines()[0]}")
        sport, line = through("198.18.0.2", 81, "4")
        check(line.startswith(f"v2 198.18.0.1 {sport} 198.18.0.2 81\nhello through the proxy"),
              f"IPv4 client -> IPv6 backend: PROXY v2 AF_INET: {line.splitlines()[0]}")
        sport, line = through("2001:2::2", 82, "6")
        check(line.startswith(f"v2 2001:2::1 {sport} 2001:2::2 82\n"),
              f"IPv6 client -> IPv6 backend: {line.splitlines()[0]}")
        sport, line = through("2001:2::2", 83, "6")
        check(line.startswith(f"v1 2001:2::1 {sport} 2001:2::2 83\n"),
              f"IPv6 client -> an IPv6 backend behind --route 2001:2:1::/64,via=2001:2::1: {line.splitlines()[0]}")
        st = a.stats()
        check(st["nd_solicitations_out"] >= 1 and st["nd_advertisements_in"] >= 1,
              f"the appliance resolved its IPv6 next hops by ND (NS out {st['nd_solicitations_out']}, "
              f"NA in {st['nd_advertisements_in']})")
        check("bad header" not in open(log).read(), "every PROXY header parsed by the backends")
        a.quit()
    finally:
        for p in procs:
            p.kill()
        if os.path.exists(log):
            os.unlink(log)
print("all ok")
