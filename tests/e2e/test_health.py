#!/usr/bin/python3
"""Health for routers (ECMP scale-out): /healthz, `show health`,
`set health drain`, and scripts/health-route.sh announcing and withdrawing
a service address through a real BIRD 2 that exports it over BGP to a
second BIRD (the "router"), all inside the test's namespace.
  A. a pool with no backend up: 503, the pool named; `show health` and
     tcpterm_healthy agree
  B. the backend comes up: 200; HEAD answers too; DPDK telemetry's
     /tcpterm/health agrees; every metric the fleet's alerting rules
     (docs/tcpterm-alerts.yml) name is exported; idle connections held
     open (40 from one address, then 80 from ten) cannot make a probe fail
  C. drained by the operator: 503 while clients are still served; undrained: 200
  D. the port's link down: 503 naming the port; up again: 200
  E. a worker that does not answer its control query: 503 (dataplane);
     workers stopped with `stop`: 503; started: 200
  F. health-route.sh + BIRD and + FRR: a BIRD router learns 198.18.1.10/32
     over BGP from each speaker while healthy, loses it when drained, learns
     it again when undrained
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TOP, Appliance, Daemons, check, sh  # noqa: E402

URL = "http://127.0.0.1:9100"
BACKEND = "198.18.0.11"
VIP = "198.18.1.10/32"


def healthz(a, method="GET"):
    args = ["curl", "-s", "-m", "15", "-w", "\n%{http_code}"] + (["-I"] if method == "HEAD" else []) + [URL + "/healthz"]
    r = a.run(args, check=False)
    body, _, code = r.stdout.decode().rpartition("\n")
    return int(code or 0), body


def wait_code(a, want, what, timeout=20):
    # The endpoint answers from a snapshot up to 0.5 s old.
    a.wait_for(lambda: healthz(a)[0] == want, timeout=timeout, every=0.3, what=what)
    return healthz(a)


def main():
    extra = ["--http-stats", "127.0.0.1:9100",
             "--pool", f"web={BACKEND}:8080,check=tcp,interval=300,rise=1,fall=1"]
    with Appliance(listen=["198.18.0.2:80/http", "198.18.0.2:81/proxy,pool=web"], extra=extra) as a, \
            Daemons(a.ns) as d:
        scenarios(a, d)


HOLD = r"""
import socket, subprocess, sys, time
def hold(src, n):
    out = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", 9100))
        out.append(s)
    return out
def closed(socks):  # closed by the endpoint (EOF or reset), not by us
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            n += s.recv(1) == b""
        except BlockingIOError:
            pass
        except ConnectionResetError:
            n += 1
    return n
def closed_wait(groups, want):  # what the endpoint has closed, once it reaches want (5 s at most)
    end = time.time() + 5
    while True:
        n = sum(closed(g) for g in groups)
        if n >= want or time.time() > end:
            return n
        time.sleep(0.1)
def probe():
    r = subprocess.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://127.0.0.1:9100/healthz"], capture_output=True)
    return r.stdout.decode()
one = hold("127.0.0.2", 40)             # one address holds 40 idle connections
p1 = probe()
c1 = closed_wait([one], 32)
many = [hold(f"127.0.0.{i}", 8) for i in range(3, 13)]   # ten addresses, 8 each: 80 more
p2 = probe()
# 8 + 80 held and the probe: 25 of the oldest go (all 8 of the first address)
c2 = closed_wait([one] + many, 32 + 25)
# A connection being answered is not the one to go: a reader that takes
# /metrics slowly (a small receive buffer, not read yet) keeps its answer
# while 8 more from its address come and wait.
for g in [one] + many:
    for s in g:
        s.close()
time.sleep(0.5)
slow = socket.socket()
slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
slow.bind(("127.0.0.20", 0))
slow.connect(("127.0.0.1", 9100))
slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.5)
idle = hold("127.0.0.20", 8)
c3 = closed_wait([idle], 1)  # at once: the idle ones' own 5 s limit is far off
got = b""
slow.settimeout(10)
while True:
    try:
        d = slow.recv(65536)
    except OSError:
        break
    if not d:
        break
    got += d
head, _, body = got.partition(b"\r\n\r\n")
want = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) if b"Content-Length: " in head else -1
print(p1, c1, p2, c2, len(body), want, c3)
"""


def held_open(a):
    # An address that holds idle connections open loses its oldest ones, not
    # the probe its place: the watcher (and a router's probe) still get an
    # answer.  Before, 32 idle connections made every probe a 503, which
    # took the appliance out of ECMP.
    p1, c1, p2, c2, got, want, c3 = a.python(HOLD, timeout=120).stdout.decode().split()
    check(p1 == "200" and int(c1) == 32,
          f"40 idle connections from one address: the probe still gets 200, the address keeps 8 "
          f"(probe {p1}, {c1} of its connections closed by the endpoint)")
    check(p2 == "200" and int(c2) == 32 + 25,
          f"80 more from ten addresses: the probe still gets 200, the oldest 25 are closed "
          f"(probe {p2}, {c2} closed in all)")
    check(int(want) > 20000 and got == want and c3 == "1",
          f"a reader taking /metrics slowly keeps its answer whole ({got} of {want} bytes) while 8 more "
          f"connections from its address arrive: the oldest of those waiting goes instead ({c3} closed)")
    m = a.run(["curl", "-s", "-m", "10", URL + "/metrics"]).stdout.decode()
    ev = dict(re.findall(r'tcpterm_http_stats_evicted_total\{reason="(\w+)"\} (\d+)', m))
    check(int(ev.get("per_source", 0)) >= 32 and int(ev.get("full", 0)) >= 1,
          f"the evictions are counted in /metrics ({ev})")


def scenarios(a, d):
    # ---- A. no backend up ---------------------------------------------------
    code, body = wait_code(a, 503, "503 while the pool's only backend is absent")
    check(code == 503 and body.startswith("unhealthy") and "pool web: FAIL (0 of 1 backends up)" in body,
          f"no backend up: 503, the pool named ({body.splitlines()[:4]})")
    show = a.cli("show health")
    check("unhealthy" in show and "pool web: FAIL" in show and "dataplane: ok" in show,
          "show health says the same")
    m = a.run(["curl", "-s", "-m", "10", URL + "/metrics"]).stdout.decode()
    check("tcpterm_healthy 0" in m and 'tcpterm_port_link_up{port="0"} 1' in m,
          "tcpterm_healthy 0, tcpterm_port_link_up 1")

    # ---- B. the backend comes up --------------------------------------------
    sh(f"ip netns exec {a.ns} ip addr add {BACKEND}/24 dev {a.tap}")
    d.spawn(["socat", f"TCP-LISTEN:8080,bind={BACKEND},fork,reuseaddr", "EXEC:/bin/cat"])
    code, body = wait_code(a, 200, "200 once the backend is up")
    check(body.startswith("healthy") and "pool web: ok (1 of 1 backends up)" in body and "port 0: ok" in body,
          "backend up: 200, every check ok")
    code, head = healthz(a, "HEAD")
    check(code == 200, "HEAD /healthz answers 200")
    # The fleet's alerting rules name only metrics the appliance exports.
    m = a.run(["curl", "-s", "-m", "10", URL + "/metrics"]).stdout.decode()
    exported = {line.split("{")[0].split(" ")[0] for line in m.splitlines() if line and not line.startswith("#")}
    named = set(re.findall(r"\btcpterm_[a-z0-9_]+", open(os.path.join(TOP, "docs", "tcpterm-alerts.yml")).read()))
    check(len(named) >= 15 and named <= exported,
          f"every metric docs/tcpterm-alerts.yml names is exported ({len(named)}; missing: {sorted(named - exported)})")
    t = a.telemetry("/tcpterm/health")
    check(t.get("healthy") == 1 and t.get("pool_web", "").startswith("ok: 1 of 1") and
          t.get("port_0") == "ok: link up", f"DPDK telemetry /tcpterm/health agrees ({t})")

    # ---- B2. connections held open cannot fail a probe ----------------------
    held_open(a)

    # ---- C. drained by the operator -------------------------------------------
    out = a.cli("set health drain on")
    check("drain on" in out, "set health drain on")
    code, body = healthz(a)  # the flag is read live, not from the cached snapshot
    check(code == 503 and "operator: FAIL" in body, "drained: 503 at once, the operator named")
    r = a.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "http://198.18.0.2/"], check=False)
    check(r.stdout == b"200", "while drained, clients are still served (a new connection got 200)")
    a.cli("set health drain off")
    check(healthz(a)[0] == 200, "undrained: 200")

    # ---- D. the link ----------------------------------------------------------
    sh(f"ip netns exec {a.ns} ip link set {a.tap} down")
    code, body = wait_code(a, 503, "503 with the link down")
    check("port 0: FAIL (link down)" in body, "link down: 503, the port named")
    sh(f"ip netns exec {a.ns} ip link set {a.tap} up")
    wait_code(a, 200, "200 with the link up again")
    check(True, "link up again: 200")

    # ---- E. the dataplane -------------------------------------------------------
    a.cli("debug stall 5000")
    time.sleep(0.6)  # past the cached snapshot's 0.5 s
    code, body = healthz(a)
    check(code == 503 and "dataplane: FAIL (a worker lcore did not answer" in body,
          "a worker that does not answer in time: 503 (dataplane)")
    wait_code(a, 200, "200 once the worker answers again")
    check(True, "the worker answers again: 200")
    a.cli("stop")
    code, body = wait_code(a, 503, "503 with the workers stopped")
    check("dataplane: FAIL (worker lcores stopped" in body, "workers stopped: 503")
    a.cli("start")
    wait_code(a, 200, "200 once started")
    check(True, "started: 200")

    # ---- F. health-route.sh with BIRD 2 and FRR over BGP ------------------------
    # In the namespace: two speakers for the appliance, each driven by its
    # own watcher -- BIRD (AS 65001) on 198.18.0.1 and FRR's bgpd (AS 65003)
    # on 198.18.0.6 -- and a BIRD router (AS 65002) on 198.18.0.5 with an
    # eBGP session to each (multihop: in one namespace each one's neighbour
    # is a local address, which BIRD does not take as directly connected;
    # a connect that finds the other not yet listening is retried in 5 s,
    # not 120).
    sh(f"ip netns exec {a.ns} ip addr add 198.18.0.5/24 dev {a.tap}")
    sh(f"ip netns exec {a.ns} ip addr add 198.18.0.6/24 dev {a.tap}")
    speaker = f"""
router id 198.18.0.1;
protocol device {{ }}
protocol static vip {{ disabled; ipv4; route {VIP} blackhole; }}
protocol bgp uplink {{
  local 198.18.0.1 as 65001; neighbor 198.18.0.5 as 65002; strict bind yes; multihop; connect retry time 5;
  ipv4 {{ import none; export where proto = "vip"; }};
}}
"""
    router = """
router id 198.18.0.5;
protocol device { }
protocol bgp appliance {
  local 198.18.0.5 as 65002; neighbor 198.18.0.1 as 65001; strict bind yes; multihop; connect retry time 5;
  ipv4 { import all; export none; };
}
protocol bgp frr {
  local 198.18.0.5 as 65002; neighbor 198.18.0.6 as 65003; strict bind yes; multihop; connect retry time 5;
  ipv4 { import all; export none; };
}
"""
    # FRR's bgpd alone, without zebra (-Z): no RIB to check a `network`
    # against, so import-check is off.
    frr = """
router bgp 65003
 bgp router-id 198.18.0.6
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 198.18.0.5 remote-as 65002
 neighbor 198.18.0.5 ebgp-multihop 2
 neighbor 198.18.0.5 update-source 198.18.0.6
"""
    for name, conf in (("speaker", speaker), ("router", router)):
        r = d.bird(name, conf)
        check(r.returncode == 0, f"bird -p accepts the {name}'s configuration {r.stderr.strip()}")

    with open(f"{d.tmp}/bgpd.conf", "w") as f:
        f.write(frr)
    r = sh(["/usr/lib/frr/bgpd", "-C", "-S", "-Z", "-f", f"{d.tmp}/bgpd.conf"], check=False)
    check(r.returncode == 0, f"bgpd -C accepts FRR's configuration {r.stderr.strip()[-200:]}")
    d.spawn(["/usr/lib/frr/bgpd", "-f", f"{d.tmp}/bgpd.conf", "-i", f"{d.tmp}/bgpd.pid", "-S", "-Z",
             "-l", "198.18.0.6", "--vty_socket", d.tmp, "--log", f"file:{d.tmp}/bgpd.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vtysh = (f"vtysh --vty_socket {d.tmp} -d bgpd -c 'configure terminal' -c 'router bgp 65003' "
             f"-c 'address-family ipv4 unicast' -c")

    def router_has(proto):  # the service address, as the router learned it from one speaker
        return VIP.split("/")[0] in d.birdc("router", f"show route {VIP} protocol {proto}")

    def both(present):
        return all(router_has(p) == present for p in ("appliance", "frr"))

    for proto in ("appliance", "frr"):
        a.wait_for(lambda: "Established" in d.birdc("router", f"show protocols {proto}"), timeout=60,
                   what=f"the router's BGP session {proto}")
    check(True, "the router's BGP sessions with the BIRD and the FRR speaker are established")
    check(both(False), "the routes start withdrawn: the watchers decide")
    log = d.watch("speaker", URL + "/healthz")
    log_frr = d.watch("frr", URL + "/healthz", up=f"{vtysh} 'network {VIP}'", down=f"{vtysh} 'no network {VIP}'")
    a.wait_for(lambda: both(True), timeout=30, what="the router learning the service address from both")
    check(True, f"healthy: the router learns {VIP} over BGP from BIRD and from FRR")
    a.cli("set health drain on")
    a.wait_for(lambda: both(False), timeout=30, what="the routes withdrawn")
    check(True, "drained: both speakers withdraw it")
    a.cli("set health drain off")
    a.wait_for(lambda: both(True), timeout=30, what="the routes announced again")
    check(True, "undrained: the router learns it again from both")
    for name, path in (("BIRD", log), ("FRR", log_frr)):
        text = open(path).read()
        check(text.count("healthy: running the up command") == 2 and "unhealthy (HTTP 503: operator: FAIL" in text
              and "command failed" not in text,
              f"the {name} watcher logged each change once, with the reason ({text.strip().splitlines()})")
    # --max-polls ends the watcher: two polls of a healthy appliance make one
    # change (rise 2), its up command run once, then exit 0.
    r = a.run([os.path.join(TOP, "scripts", "health-route.sh"), "--url", URL + "/healthz", "--interval", "0.2",
               "--max-polls", "2", "--up", "echo UP-RAN", "--down", "echo DOWN-RAN"], timeout=60, check=False)
    out = r.stdout.decode()
    check(r.returncode == 0 and out.count("UP-RAN") == 1 and "DOWN-RAN" not in out,
          f"--max-polls 2 on a healthy appliance: the up command once, then exit 0 ({out.strip().splitlines()})")
    for bad, word in ((["--rise", "x"], "--rise"), (["--interval", "0"], "--interval"), (["--bogus"], "--bogus"),
                      (["--fall"], "--fall")):
        r = subprocess.run([os.path.join(TOP, "scripts", "health-route.sh"), "--url", URL, "--up", "true",
                            "--down", "true"] + bad, capture_output=True, text=True)
        check(r.returncode == 2 and word in r.stderr and len(r.stderr.strip().splitlines()) == 1,
              f"a bad flag: exit 2 and one line naming it ({r.stderr.strip()})")
    r = subprocess.run([os.path.join(TOP, "scripts", "health-route.sh"), "--up", "true"], capture_output=True, text=True)
    check(r.returncode == 2 and "--url" in r.stderr, f"a missing flag: exit 2, named ({r.stderr.strip()[:60]})")
    a.quit()


main()
print("all ok")
