#!/usr/bin/python3
"""Scale-out behind an ECMP router: two tcpterm appliances serve one
service address (198.18.1.10), each announcing it over BGP through its own
BIRD 2 speaker driven by scripts/health-route.sh; a third BIRD is the
router, which merges both announcements into one Linux multipath route
(the namespace's kernel is the router's forwarding plane, hashing each
packet's 4-tuple onto a next hop).  The router and the appliances share
one namespace, the clients have another:

    kernel 198.18.0.1 --tap-- A1 198.18.0.2     speaker 1 (AS 65001), next hop A1
    kernel 198.18.2.1 --tap-- A2 198.18.2.2     speaker 2 (AS 65002), next hop A2
    kernel 198.18.3.1 (lo)                      router (AS 65000), kernel export, merge paths
    kernel 198.18.4.1 --veth-- clients 198.18.4.2 (their own namespace: the router forwards)

  A. both healthy: the routes to the IPv4 and the IPv6 service address
     (2001:2:1::10) have two next hops each; 200 IPv4 and 100 IPv6 clients
     all get 200, and both appliances serve a share of each
  B. A1 drained (`set health drain on`): its speaker withdraws both, each
     route keeps one next hop; 100 IPv4 and 50 IPv6 new clients all get
     200, none reaches A1, while A1 is still running
  C. A1 undrained: two next hops again, and A1 serves again
  D. what a withdrawal does to 40 keep-alive connections held open across
     it: those on A2 carry on, those on A1 now reach A2, which has no state
     for them, and are reset at once; when A1 returns, the connections
     opened meanwhile that the multipath hash now sends to A1 are reset
     too (counted: about half)
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Appliance, Daemons, check, reach, sh  # noqa: E402

VIP = "198.18.1.10"
VIP6 = "2001:2:1::10"
NS = f"tte{os.getpid() % 100000}"  # the router and the appliances
CNS = NS + "c"  # the clients, one hop behind the router


class Member(Appliance):
    """One appliance on its own TAP in the test's (shared) namespace."""

    def __init__(self, idx, net):
        super().__init__(listen=[f"{VIP}:80/http"], name=NS)
        self.idx, self.net = idx, net  # net: "198.18.0" or "198.18.2"
        self.net6 = f"2001:2:0:{idx}:"  # the IPv6 link: 2001:2:0:N::1 the router, ::2 the appliance
        self.prefix = f"{NS}m{idx}"
        self.tap = f"{NS}m{idx}"[:15]
        self.stats_addr = f"127.0.0.1:{9100 + idx}"

    def __enter__(self):
        args = ["ip", "netns", "exec", NS, BIN, "-l", "0,1", "--no-huge", "-m", "512", "--no-pci",
                "--file-prefix", self.prefix, "--log-level", "warn", "--vdev", f"net_tap0,iface={self.tap}",
                "--", "-i", "--idle-sleep-us", "50", "--addr", f"{self.net}.2/24", "--addr", f"{VIP}/32",
                "--addr", f"{self.net6}:2/64", "--addr", f"{VIP6}/128",
                "--listen", f"{VIP}:80/http", "--listen", f"[{VIP6}]:80/http", "--http-stats", self.stats_addr]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = b""
        self._read_until_prompt(timeout=30)
        sh(f"ip netns exec {NS} ip addr add {self.net}.1/24 dev {self.tap}")
        sh(f"ip netns exec {NS} sysctl -qw net.ipv6.conf.{self.tap}.accept_dad=0")
        sh(f"ip netns exec {NS} ip -6 addr add {self.net6}:1/64 dev {self.tap} nodad")
        sh(f"ip netns exec {NS} ip link set {self.tap} up")
        reach(NS, f"{self.net}.2")
        reach(NS, f"{self.net6}:2", v6=True)
        return self

    def __exit__(self, *exc):
        try:
            if self.proc and self.proc.poll() is None:
                self.quit()
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
            sh(f"rm -rf /var/run/dpdk/{self.prefix}", check=False)
        return False

    def served(self):
        return self.stats().get("passive_opens", 0)


def ns(cmd, **kw):
    return sh(f"ip netns exec {NS} {cmd}", **kw)


def clients(n, vip=VIP):
    """n HTTP clients to the service address (IPv4 or IPv6), each a new
    connection (a new source port, so a new ECMP hash); the count of 200s."""
    r = sh(f"ip netns exec {CNS} /usr/bin/python3 -c '{CLIENT}' {n} {vip}", check=False)
    return int(r.stdout.strip() or -1), r.stderr.strip()[-300:]


CLIENT = """
import socket, sys
ok = 0
for i in range(int(sys.argv[1])):
    s = socket.create_connection((sys.argv[2], 80), timeout=10)
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    d = b""
    while True:
        x = s.recv(4096)
        if not x: break
        d += x
    s.close()
    ok += d.startswith(b"HTTP/1.0 200") or d.startswith(b"HTTP/1.1 200")
print(ok)
""".replace("'", '"')


HOLDER = r"""
import socket, sys
def ask(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
    d = b""
    while b"\r\n\r\n" not in d or len(d) < d.index(b"\r\n\r\n") + 4 + int(d.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
        x = s.recv(4096)
        if not x: raise ConnectionResetError("closed")
        d += x
    return d.startswith(b"HTTP/1.1 200")
conns = [socket.create_connection(("198.18.1.10", 80), timeout=5) for _ in range(int(sys.argv[1]))]
print(" ".join("%s:%d" % c.getsockname() for c in conns if ask(c)), flush=True)
for line in sys.stdin:  # one round per line: the fate of each connection
    out = []
    for c in conns:
        try:
            out.append("ok" if ask(c) else "bad")
        except ConnectionResetError:
            out.append("reset")
        except OSError as e:
            out.append("timeout" if isinstance(e, socket.timeout) else "error")
    print(" ".join(out), flush=True)
"""


def nexthops(vip=VIP):
    out = ns(f"ip {'-6 ' if ':' in vip else ''}route show {vip}", check=False).stdout
    return out.count("nexthop via")


def route(vip=VIP):
    return " ".join(ns(f"ip {'-6 ' if ':' in vip else ''}route show {vip}").stdout.split())


def main():
    for n in (NS, CNS):
        sh(f"ip netns del {n}", check=False)
        sh(f"ip netns add {n}")
    try:
        ns("ip link set lo up")
        ns(f"ip addr add 198.18.3.1/32 dev lo")
        # The router forwards, and hashes each packet's 4-tuple (L4), not
        # only its addresses, onto a next hop.
        ns("sysctl -qw net.ipv4.ip_forward=1")
        ns("sysctl -qw net.ipv4.fib_multipath_hash_policy=1")
        ns("sysctl -qw net.ipv6.conf.all.forwarding=1")
        ns("sysctl -qw net.ipv6.fib_multipath_hash_policy=1")
        # The clients: their own namespace behind a veth pair, so that the
        # router forwards their packets as a router does, instead of
        # originating them (a local socket keeps the route it was given).
        sh(f"ip link add {NS}r netns {NS} type veth peer name {NS}v netns {CNS}")
        ns(f"ip addr add 198.18.4.1/24 dev {NS}r")
        ns(f"ip -6 addr add 2001:2:0:4::1/64 dev {NS}r nodad")
        ns(f"ip link set {NS}r up")
        for cmd in ("ip link set lo up", f"ip addr add 198.18.4.2/24 dev {NS}v",
                    f"ip -6 addr add 2001:2:0:4::2/64 dev {NS}v nodad", f"ip link set {NS}v up",
                    "ip route add default via 198.18.4.1", "ip -6 route add default via 2001:2:0:4::1"):
            sh(f"ip netns exec {CNS} {cmd}")
        with Member(1, "198.18.0") as a1, Member(2, "198.18.2") as a2, Daemons(NS) as d, Daemons(CNS) as dc:
            scenarios(a1, a2, d, dc)
    finally:
        for n in (NS, CNS):
            sh(f"ip netns del {n}", check=False)


def scenarios(a1, a2, d, dc):
    def bird(name, conf):
        r = d.bird(name, conf)
        check(r.returncode == 0, f"bird -p accepts {name}'s configuration {r.stderr.strip()}")

    # Each speaker sits beside its appliance and names the appliance as the
    # next hop of the service address, once its watcher enables the route
    # (it starts disabled); sessions are multihop (in one namespace every
    # address is local).
    for m in (a1, a2):
        bird(f"speaker{m.idx}", f"""
router id {m.net}.1;
protocol device {{ }}
protocol static vip {{ disabled; ipv4; route {VIP}/32 blackhole; }}
protocol static vip6 {{ disabled; ipv6; route {VIP6}/128 blackhole; }}
protocol bgp uplink {{
  local {m.net}.1 as 6500{m.idx}; neighbor 198.18.3.1 as 65000; multihop; strict bind yes; connect retry time 5;
  ipv4 {{ import none; export filter {{ if proto = "vip" then {{ bgp_next_hop = {m.net}.2; accept; }} reject; }}; }};
  ipv6 {{ import none; next hop address {m.net6}:2; export where proto = "vip6"; }};
}}
""")
    bird("router", f"""
router id 198.18.3.1;
protocol device {{ }}
protocol direct {{ ipv4; }}  # the taps' prefixes: the next hops resolve through them
protocol direct d6 {{ ipv6; }}
protocol kernel {{ ipv4 {{ import none; export where proto ~ "a*"; }}; merge paths on; }}
protocol kernel k6 {{ ipv6 {{ import none; export where proto ~ "a*"; }}; merge paths on; }}
""" + "".join(f"""
protocol bgp a{m.idx} {{
  local 198.18.3.1 as 65000; neighbor {m.net}.1 as 6500{m.idx}; multihop; strict bind yes; connect retry time 5;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
""" for m in (a1, a2)))
    for m in (a1, a2):
        name = f"a{m.idx}"
        ns_wait(lambda: "Established" in d.birdc("router", f"show protocols {name}"), 60, f"BGP session {name}")
    check(True, "the router has a BGP session with each appliance's speaker")
    check(nexthops() == 0 and VIP not in ns("ip route").stdout and VIP6 not in ns("ip -6 route").stdout,
          "no route before the watchers start")
    for m in (a1, a2):  # each watcher announces and withdraws both service addresses
        sock = d.socks[f"speaker{m.idx}"]
        d.watch(f"speaker{m.idx}", f"http://{m.stats_addr}/healthz",
                up=f"birdc -s {sock} enable '\"vip*\"'", down=f"birdc -s {sock} disable '\"vip*\"'")

    # ---- A. both healthy ----------------------------------------------------
    ns_wait(lambda: nexthops() == 2, 60, "a multipath route with both appliances")
    check(True, f"the kernel's route to {VIP} has two next hops: {route()}")
    ns_wait(lambda: nexthops(VIP6) == 2, 30, "an IPv6 multipath route with both appliances")
    check(True, f"and its route to {VIP6}: {route(VIP6)}")
    s1, s2 = a1.served(), a2.served()
    ok, err = clients(200)
    d1, d2 = a1.served() - s1, a2.served() - s2
    check(ok == 200, f"200 clients through the router all got 200 ({ok}) {err}")
    check(d1 + d2 == 200 and d1 >= 40 and d2 >= 40, f"both appliances served a share (A1 {d1}, A2 {d2})")
    s1, s2 = a1.served(), a2.served()
    ok, err = clients(100, VIP6)
    d1, d2 = a1.served() - s1, a2.served() - s2
    check(ok == 100 and d1 >= 15 and d2 >= 15, f"100 IPv6 clients all got 200, both appliances served (A1 {d1}, A2 {d2}) {err}")

    # Keep-alive connections open across the drain and the return (D).
    holder = dc.spawn(["/usr/bin/python3", "-c", HOLDER, "40"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ends = holder.stdout.readline().split()  # the clients' address:port
    check(len(ends) == 40, f"40 keep-alive connections open through the router ({len(ends)})")
    on = {m: {l.split()[2] for l in m.cli("show flows ESTABLISHED 100").splitlines() if l.split() and l.split()[0].isdigit()}
          for m in (a1, a2)}
    where = ["A1" if e in on[a1] else "A2" if e in on[a2] else "?" for e in ends]
    check("?" not in where and "A1" in where and "A2" in where,
          f"each open connection is on one appliance, both hold some (A1 {where.count('A1')}, A2 {where.count('A2')})")

    def round_(h=holder):
        h.stdin.write("go\n")
        h.stdin.flush()
        return h.stdout.readline().split()

    # ---- B. A1 drained ----------------------------------------------------------
    a1.cli("set health drain on")
    ns_wait(lambda: nexthops() == 0 and "198.18.2.2" in ns(f"ip route show {VIP}").stdout, 30,
            "the route down to A2 alone")
    check(True, f"A1 drained: its speaker withdrew, the route is {route()}")
    ns_wait(lambda: nexthops(VIP6) == 0 and "2001:2:0:2::2" in route(VIP6), 30, "the IPv6 route down to A2 alone")
    check(True, f"...and the IPv6 route {route(VIP6)}")
    s1, s2 = a1.served(), a2.served()
    ok, err = clients(100)
    check(ok == 100 and a1.served() == s1 and a2.served() - s2 == 100,
          f"100 new clients all got 200, all from A2 (A1 {a1.served() - s1}, A2 {a2.served() - s2}) {err}")
    s1, s2 = a1.served(), a2.served()
    ok, err = clients(50, VIP6)
    check(ok == 50 and a1.served() == s1 and a2.served() - s2 == 50,
          f"50 new IPv6 clients all got 200, all from A2 (A1 {a1.served() - s1}, A2 {a2.served() - s2}) {err}")
    check("drained" in a1.cli("show health"), "A1 still runs and says why it is out")
    # D. What a withdrawal does to open connections: the router now sends
    # A1's to A2, which holds no state for them and resets them; A2's own
    # stay where they are.
    fate = round_()
    a1_fate = [f for f, w in zip(fate, where) if w == "A1"]
    a2_fate = [f for f, w in zip(fate, where) if w == "A2"]
    check(a2_fate and all(f == "ok" for f in a2_fate),
          f"D. across A1's withdrawal, the {len(a2_fate)} open connections on A2 carry on")
    check(a1_fate and all(f == "reset" for f in a1_fate),
          f"D. the {len(a1_fate)} open connections on A1 move to A2 and are reset at once, not left hanging")
    # And 20 opened while A1 is out, all on A2.
    during = dc.spawn(["/usr/bin/python3", "-c", HOLDER, "20"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    check(len(during.stdout.readline().split()) == 20, "20 more keep-alive connections opened while A1 is out")

    # ---- C. A1 back ----------------------------------------------------------------
    a1.cli("set health drain off")
    ns_wait(lambda: nexthops() == 2 and nexthops(VIP6) == 2, 30, "both next hops again (IPv4 and IPv6)")
    s1 = a1.served()
    ok, err = clients(100)
    check(ok == 100 and a1.served() > s1, f"A1 undrained: two next hops again, A1 serves again ({a1.served() - s1} of 100)")
    fate = round_()
    moved = sum(1 for f, w in zip(fate, where) if w == "A2" and f == "reset")
    kept = sum(1 for f, w in zip(fate, where) if w == "A2" and f == "ok")
    check(moved == 0 and kept == len(a2_fate),
          f"D. when A1 returns, the {kept} connections that were on A2 before the drain carry on (the same two "
          f"next hops: the same hash regions as before)")
    fate = round_(during)
    check(len(fate) == 20 and set(fate) <= {"ok", "reset"} and fate.count("reset") >= 1 and fate.count("ok") >= 1,
          f"D. of the 20 opened while A1 was out, {fate.count('ok')} carry on and {fate.count('reset')} are "
          f"hashed to A1 and reset at once")
    holder.stdin.close()
    during.stdin.close()
    a1.quit()
    a2.quit()


def ns_wait(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


main()
print("all ok")
