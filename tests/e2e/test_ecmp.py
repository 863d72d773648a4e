#!/usr/bin/python3
"""Scale-out behind an ECMP router: two tcpterm appliances serve one
service address (198.18.1.10), each announcing it over BGP through its own
BIRD 2 speaker driven by scripts/health-route.sh; a third BIRD is the
router, which merges both announcements into one Linux multipath route
(the namespace's kernel is the router's forwarding plane, hashing each
connection's 4-tuple onto a next hop).  All in one namespace:

    kernel 198.18.0.1 --tap-- A1 198.18.0.2     speaker 1 (AS 65001), next hop A1
    kernel 198.18.2.1 --tap-- A2 198.18.2.2     speaker 2 (AS 65002), next hop A2
    kernel 198.18.3.1 (lo)                      router (AS 65000), kernel export, merge paths

  A. both healthy: the route has two next hops; 200 clients all get 200,
     and both appliances serve a share
  B. A1 drained (`set health drain on`): its speaker withdraws, the route
     keeps one next hop; 100 new clients all get 200, none reaches A1,
     while A1 is still running
  C. A1 undrained: two next hops again, and A1 serves again
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, TOP, Appliance, check, sh  # noqa: E402

VIP = "198.18.1.10"
NS = f"tte{os.getpid() % 100000}"


class Member(Appliance):
    """One appliance on its own TAP in the test's (shared) namespace."""

    def __init__(self, idx, net):
        super().__init__(listen=[f"{VIP}:80/http"], name=NS)
        self.idx, self.net = idx, net  # net: "198.18.0" or "198.18.2"
        self.prefix = f"{NS}m{idx}"
        self.tap = f"{NS}m{idx}"[:15]
        self.stats_addr = f"127.0.0.1:{9100 + idx}"

    def __enter__(self):
        args = ["ip", "netns", "exec", NS, BIN, "-l", "0,1", "--no-huge", "-m", "512", "--no-pci",
                "--file-prefix", self.prefix, "--log-level", "warn", "--vdev", f"net_tap0,iface={self.tap}",
                "--", "-i", "--idle-sleep-us", "50", "--addr", f"{self.net}.2/24", "--addr", f"{VIP}/32",
                "--listen", f"{VIP}:80/http", "--http-stats", self.stats_addr]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = b""
        self._read_until_prompt(timeout=30)
        sh(f"ip netns exec {NS} ip addr add {self.net}.1/24 dev {self.tap}")
        sh(f"ip netns exec {NS} ip link set {self.tap} up")
        for _ in range(50):
            if "lladdr" in sh(f"ip netns exec {NS} ip neigh show {self.net}.2", check=False).stdout:
                break
            sh(f"ip netns exec {NS} ping -c1 -W1 {self.net}.2", check=False)
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


def clients(n):
    """n HTTP clients from the kernel to the service address, each a new
    connection (a new source port, so a new ECMP hash); the count of 200s."""
    r = ns(f"/usr/bin/python3 -c '{CLIENT}' {n}", check=False)
    return int(r.stdout.strip() or -1), r.stderr.strip()[-300:]


CLIENT = """
import socket, sys
ok = 0
for i in range(int(sys.argv[1])):
    s = socket.create_connection(("198.18.1.10", 80), timeout=10)
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


def nexthops():
    out = ns(f"ip route show {VIP}", check=False).stdout
    return out.count("nexthop via")


def main():
    sh(f"ip netns del {NS}", check=False)
    sh(f"ip netns add {NS}")
    tmp = tempfile.mkdtemp(prefix="tt-ecmp-")
    procs = []
    try:
        ns("ip link set lo up")
        ns(f"ip addr add 198.18.3.1/32 dev lo")
        # The router's forwarding: hash the 4-tuple (L4), not only the addresses.
        ns("sysctl -qw net.ipv4.fib_multipath_hash_policy=1")
        with Member(1, "198.18.0") as a1, Member(2, "198.18.2") as a2:
            scenarios(a1, a2, tmp, procs)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for i in (1, 2):  # what each watcher saw, for the log
            if os.path.exists(f"{tmp}/watch{i}.log"):
                print(f"watcher {i}:", open(f"{tmp}/watch{i}.log").read().replace("BIRD 2.0.12 ready.\n", "").strip())
        sh(f"ip netns del {NS}", check=False)
        sh(f"rm -rf {tmp}", check=False)


def scenarios(a1, a2, tmp, procs):
    socks = {}

    def bird(name, conf):
        path = f"{tmp}/{name}.conf"
        with open(path, "w") as f:
            f.write(conf)
        r = sh(["bird", "-p", "-c", path], check=False)
        check(r.returncode == 0, f"bird -p accepts {name}'s configuration {r.stderr.strip()}")
        socks[name] = f"{tmp}/{name}.ctl"
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS, "bird", "-f", "-c", path, "-s", socks[name],
                                       "-P", f"{tmp}/{name}.pid"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))

    def birdc(name, cmd):
        return ns(f"birdc -s {socks[name]} {cmd}", check=False).stdout

    # Each speaker sits beside its appliance and names the appliance as the
    # next hop of the service address, once its watcher enables the route
    # (it starts disabled); sessions are multihop (in one namespace every
    # address is local).
    for m in (a1, a2):
        bird(f"speaker{m.idx}", f"""
router id {m.net}.1;
protocol device {{ }}
protocol static vip {{ disabled; ipv4; route {VIP}/32 blackhole; }}
protocol bgp uplink {{
  local {m.net}.1 as 6500{m.idx}; neighbor 198.18.3.1 as 65000; multihop; strict bind yes; connect retry time 5;
  ipv4 {{ import none; export filter {{ if proto = "vip" then {{ bgp_next_hop = {m.net}.2; accept; }} reject; }}; }};
}}
""")
    bird("router", f"""
router id 198.18.3.1;
protocol device {{ }}
protocol direct {{ ipv4; }}  # the taps' prefixes: the next hops resolve through them
protocol kernel {{ ipv4 {{ import none; export where proto ~ "a*"; }}; merge paths on; }}
""" + "".join(f"""
protocol bgp a{m.idx} {{
  local 198.18.3.1 as 65000; neighbor {m.net}.1 as 6500{m.idx}; multihop; strict bind yes; connect retry time 5;
  ipv4 {{ import all; export none; }};
}}
""" for m in (a1, a2)))
    for m in (a1, a2):
        name = f"a{m.idx}"
        ns_wait(lambda: "Established" in birdc("router", f"show protocols {name}"), 60, f"BGP session {name}")
    check(True, "the router has a BGP session with each appliance's speaker")
    check(nexthops() == 0 and VIP not in ns("ip route").stdout, "no route before the watchers start")
    for m in (a1, a2):
        log = open(f"{tmp}/watch{m.idx}.log", "w")
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", NS, os.path.join(TOP, "scripts", "health-route.sh"),
             "--url", f"http://{m.stats_addr}/healthz", "--interval", "0.5", "--rise", "2", "--fall", "2",
             "--up", f"birdc -s {socks[f'speaker{m.idx}']} enable vip",
             "--down", f"birdc -s {socks[f'speaker{m.idx}']} disable vip"], stdout=log, stderr=subprocess.STDOUT))

    # ---- A. both healthy ----------------------------------------------------
    ns_wait(lambda: nexthops() == 2, 60, "a multipath route with both appliances")
    check(True, f"the kernel's route to {VIP} has two next hops: {' '.join(ns(f'ip route show {VIP}').stdout.split())}")
    s1, s2 = a1.served(), a2.served()
    ok, err = clients(200)
    d1, d2 = a1.served() - s1, a2.served() - s2
    check(ok == 200, f"200 clients through the router all got 200 ({ok}) {err}")
    check(d1 + d2 == 200 and d1 >= 40 and d2 >= 40, f"both appliances served a share (A1 {d1}, A2 {d2})")

    # ---- B. A1 drained ----------------------------------------------------------
    a1.cli("set health drain on")
    ns_wait(lambda: nexthops() == 0 and "198.18.2.2" in ns(f"ip route show {VIP}").stdout, 30,
            "the route down to A2 alone")
    check(True, f"A1 drained: its speaker withdrew, the route is {' '.join(ns(f'ip route show {VIP}').stdout.split())}")
    s1, s2 = a1.served(), a2.served()
    ok, err = clients(100)
    check(ok == 100 and a1.served() == s1 and a2.served() - s2 == 100,
          f"100 new clients all got 200, all from A2 (A1 {a1.served() - s1}, A2 {a2.served() - s2}) {err}")
    check("drained" in a1.cli("show health"), "A1 still runs and says why it is out")

    # ---- C. A1 back ----------------------------------------------------------------
    a1.cli("set health drain off")
    ns_wait(lambda: nexthops() == 2, 30, "both next hops again")
    s1 = a1.served()
    ok, err = clients(100)
    check(ok == 100 and a1.served() > s1, f"A1 undrained: two next hops again, A1 serves again ({a1.served() - s1} of 100)")
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
