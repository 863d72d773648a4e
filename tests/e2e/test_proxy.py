#!/usr/bin/python3
"""The load-balancer front end with real Linux backends (issue 10, item 9).

Three backends (198.18.0.11-13, tests/e2e/lb_backend.py) behind tcpterm's
proxy; clients are curl and Python sockets in the same namespace.
  A. requests spread over the backends as the hash says (src-port: all three;
     src: one), and show backends counts them
  B. 16 MiB both ways through an echo backend, byte-exact (sha256)
  C. half-close: shutdown(SHUT_WR), then the whole echo and EOF
  D. RST both ways: the client's reaches the backend, the backend's the client
  E. PROXY v1 and v2 headers parsed and checked by the backend
  F. a backend that accepts and never answers is timed out (idle timeout),
     a backend whose SYNs vanish is timed out (connect-timeout-ms) and
     retried on the next one
  G. a backend that reads slowly holds the proxy's memory at its bound
  H. killing a backend: its new flows move, established flows on the others
     keep transferring; drain: no new flows, existing ones continue
After each scenario: no flow but TIME-WAIT records, no backend flow
counted; at the end no chunk in use, every mbuf back (quit).
"""
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Appliance, check, sh  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
B = ["198.18.0.11", "198.18.0.12", "198.18.0.13"]
VIP = "198.18.0.2"


def pool(name, port, extra="", backends=B):
    return ["--pool", f"{name}=" + ",".join(f"{b}:{port}" for b in backends) + (("," + extra) if extra else "")]


POOLS = (pool("web", 8080, "check=http,path=/health,interval=500,connect-timeout-ms=3000") + pool("websrc", 8080, "hash=src") +
         pool("echo", 7) + pool("pp1", 7100, "proxy-protocol=v1") + pool("pp2", 7100, "proxy-protocol=v2") +
         pool("stuck", 9001) + pool("rst", 9002) + pool("slow", 9000, backends=B[:1]) +
         pool("bh", 9003, "balance=wrr,connect-timeout-ms=500,check=none", backends=B[2:]) +
         ["--pool", "bh2=198.18.0.13:9003,198.18.0.11:7,balance=wrr,connect-timeout-ms=500,check=none"] +
         pool("who", 7200, "check=tcp,interval=300,rise=2,fall=2") +
         ["--pool", "fresh=198.18.0.14:7,check=none"])
LISTEN = [f"{VIP}:80/proxy,pool=web", f"{VIP}:81/proxy,pool=websrc", f"{VIP}:7/proxy,pool=echo",
          f"{VIP}:71/proxy,pool=pp1", f"{VIP}:72/proxy,pool=pp2", f"{VIP}:91/proxy,pool=stuck",
          f"{VIP}:92/proxy,pool=rst", f"{VIP}:90/proxy,pool=slow", f"{VIP}:93/proxy,pool=bh2",
          f"{VIP}:73/proxy,pool=who", f"{VIP}:94/proxy,pool=fresh"]


M64 = (1 << 64) - 1


def mix(x):
    """splitmix64's finaliser, as lib/lb/maglev.cc."""
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def ip4(s):
    return struct.unpack("!I", socket.inet_aton(s))[0]


def maglev(ids, m=65537):
    """The Maglev table (NSDI 2016, 3.4) as lib/lb builds it (equal weights)."""
    pref = [[mix(i) % m, mix(i ^ 0xa5a5a5a5a5a5a5a5) % (m - 1) + 1, 0] for i in ids]
    table, filled = [-1] * m, 0
    while filled < m:
        for k, p in enumerate(pref):
            while True:
                c = (p[0] + p[1] * p[2]) % m
                p[2] += 1
                if table[c] < 0:
                    break
            table[c] = k
            filled += 1
            if filled == m:
                break
    return table


def backends(a):
    """show backends as {(pool, 'ip:port'): {state, active, ok, fail, in, out}}."""
    d = {}
    for line in a.cli("show backends").split("\n"):
        f = line.split()
        if len(f) == 9 and f[0] != "pool":
            d[(f[0], f[1])] = dict(state=f[2], weight=int(f[3]), active=int(f[4]), ok=int(f[5]),
                                   fail=int(f[6]), bin=int(f[7]), bout=int(f[8]))
    return d


def quiet(a, what):
    """No flow left but TIME-WAIT records; no backend flow counted."""
    def idle():
        s = a.states()
        busy = sum(v for k, v in s.items() if k not in ("LISTEN", "TIME-WAIT"))
        act = sum(b["active"] for b in backends(a).values())
        return (busy, act) == (0, 0) or None
    try:
        a.wait_for(idle, timeout=30, what=f"no flow left after {what}")
    except AssertionError:
        print(a.cli("show tcp states"), a.cli("show flows 40"), a.cli("show backends"))
        raise
    print(f"ok: nothing left after {what}")


CLIENT = r"""
import socket, hashlib, threading, os, sys, struct, time
def conn(port):
    s = socket.create_connection(("198.18.0.2", port), timeout=20)
    return s
def recv_all(s, n):
    b = bytearray()
    while len(b) < n:
        d = s.recv(min(1 << 20, n - len(b)))
        if not d: break
        b += d
    return bytes(b)
"""


def main():
    with Appliance(listen=LISTEN, extra=POOLS) as a:
        log = f"/tmp/{a.ns}-backends.log"
        open(log, "w").close()
        procs = []
        try:
            for b in B:
                sh(f"ip netns exec {a.ns} ip addr add {b}/24 dev {a.tap}")
            time.sleep(0.5)
            for b in B:
                procs.append(subprocess.Popen(["ip", "netns", "exec", a.ns, "/usr/bin/python3",
                                               os.path.join(HERE, "lb_backend.py"), b, log]))
            a.wait_for(lambda: open(log).read().count("ready") == 3, what="backends ready")
            # SYNs to 198.18.0.13:9003 vanish (a black hole).
            sh(f"ip netns exec {a.ns} iptables -A INPUT -p tcp -d 198.18.0.13 --dport 9003 -j DROP")
            a.wait_for(lambda: all(v["state"] == "up" for v in backends(a).values()) or None,
                       what="every backend up")
            scenarios(a, log)
        finally:
            for p in procs:
                p.kill()
            if os.path.exists(log):
                os.unlink(log)


def scenarios(a, log):
    # ---- A. spread, exactly as the hash says ------------------------------
    # Each curl from a source port of our choosing: the backend it must reach
    # is Maglev's answer for (198.18.0.1, port), computed here independently.
    table = maglev([ip4(b) << 16 | 8080 for b in B])
    ports = list(range(30000, 30300))
    r = a.run("for p in %s; do curl -s -m 5 --local-port $p http://198.18.0.2/; done" % " ".join(map(str, ports)))
    got = [x for x in r.stdout.decode().split("\n") if x]
    want = [f"backend {B[table[mix((ip4('198.18.0.1') << 16 | p) ^ 0x6d61676c6576) % 65537]]}" for p in ports]
    per = {b: got.count(f"backend {b}") for b in B}
    print("per backend:", per)
    check(len(got) == 300, f"300 requests through the proxy answered ({len(got)})")
    # A connect that fails (on a busy machine: a SYN-ACK later than the
    # connect timeout) is retried on the next backend of the ring: such a
    # request may land elsewhere, and only then, with its failure counted.
    bs = backends(a)
    wrong = [(p, g, w) for p, g, w in zip(ports, got, want) if g != w]
    failed = {b: bs[("web", f"{b}:8080")]["fail"] for b in B}
    excused = all(failed[w.split()[1]] > 0 for _, _, w in wrong) and len(wrong) <= sum(failed.values())
    check(excused, f"each went to the backend the Maglev hash names ({300 - len(wrong)}/300; "
                   f"the others after a counted connect failure: {wrong} {failed})")
    check(all(n >= 45 for n in per.values()), "hash=src-port spreads them over all three backends")
    bs = backends(a)
    check(all(bs[("web", f"{b}:8080")]["ok"] >= per[b] for b in B),
          "show backends counts the connects of each backend")
    r = a.run("for i in $(seq 30); do curl -s -m 5 http://198.18.0.2:81/; done")
    check(len(set(x for x in r.stdout.decode().split("\n") if x)) == 1,
          "hash=src sends one client address to one backend")
    quiet(a, "A")

    # ---- B. 16 MiB both ways ----------------------------------------------
    r = a.python(CLIENT + r"""
data = os.urandom(16 << 20)
s = conn(7)
back = []
t = threading.Thread(target=lambda: back.append(recv_all(s, len(data))))
t.start()
s.sendall(data)
t.join()
print(hashlib.sha256(data).hexdigest(), hashlib.sha256(back[0]).hexdigest(), len(back[0]))
s.close()
""")
    h = r.stdout.decode().split()
    check(h[0] == h[1] and h[2] == str(16 << 20), "16 MiB both ways through the proxy, byte-exact (sha256)")
    st = a.stats()
    check(st.get("spliced_bytes", 0) >= 2 * (16 << 20), f"moved by splicing ({st.get('spliced_bytes')} bytes)")
    check(st.get("splice_copied_bytes", 1) * 100 <= st.get("spliced_bytes", 0),
          f"by chunk handover: {st.get('splice_copied_bytes')} bytes copied")
    quiet(a, "B")

    # ---- C. half-close ------------------------------------------------------
    r = a.python(CLIENT + r"""
data = os.urandom(1 << 20)
s = conn(7)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
back = recv_all(s, len(data) + 1)
print(len(back), back == data)
""")
    check(r.stdout.decode().split() == [str(1 << 20), "True"],
          "half-close: SHUT_WR reaches the backend after the bytes, the whole echo and EOF come back")
    quiet(a, "C")

    # ---- D. RST both ways -------------------------------------------------
    r = a.python(CLIENT + r"""
s = conn(92)
s.sendall(b"hello, please reset me")
try:
    d = s.recv(100)
    print("no reset", d)
except ConnectionResetError:
    print("reset")
""")
    check(r.stdout.decode().strip() == "reset", "an RST from the backend reaches the client")
    before = open(log).read().count("reset 7")
    a.python(CLIENT + r"""
s = conn(7)
s.sendall(b"x" * 1000)
assert recv_all(s, 1000) == b"x" * 1000
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.sendall(b"y" * 100)
s.close()
""")
    a.wait_for(lambda: open(log).read().count("reset 7") > before, what="the backend sees the client's RST")
    print("ok: an RST from the client reaches the backend")
    quiet(a, "D")

    # ---- E. PROXY protocol ----------------------------------------------
    for port, v in ((71, "v1"), (72, "v2")):
        r = a.python(CLIENT + f"""
s = conn({port})
me = s.getsockname()
s.sendall(b"ping")
line = b""
while not line.endswith(b"\\n"): line += s.recv(1)
print(line.decode().strip(), me[0], me[1], recv_all(s, 4))
""")
        f = r.stdout.decode().split()
        check(f[:5] == [v, f[5], f[6], VIP, str(port)] and f[1] == "198.18.0.1" and f[7] == "b'ping'",
              f"PROXY {v}: the backend parsed the client's address and port ({' '.join(f[:5])})")
    check("bad header" not in open(log).read(), "no malformed PROXY header seen by a backend")
    quiet(a, "E")

    # ---- F. timeouts --------------------------------------------------------
    a.cli("set idle-timeout 2000")
    r = a.python(CLIENT + r"""
s = conn(91)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
t = time.time()
try:
    d = s.recv(100)
    print("closed" if d == b"" else "data", round(time.time() - t, 1))
except ConnectionResetError:
    print("reset", round(time.time() - t, 1))
""")
    f = r.stdout.decode().split()
    check(f[0] in ("closed", "reset") and float(f[1]) < 10,
          f"a backend that never answers is timed out by the idle timeout ({f})")
    a.cli("set idle-timeout 300000")
    quiet(a, "F (idle timeout)")
    r = a.python(CLIENT + r"""
s = conn(93)
s.sendall(b"through the second backend")
print(recv_all(s, 26).decode())
""")
    check(r.stdout.decode().strip() == "through the second backend",
          "a backend whose SYNs vanish is timed out and the next one answers")
    bs = backends(a)
    check(bs[("bh2", "198.18.0.13:9003")]["fail"] >= 1, "the timed-out connect is counted on its backend")
    quiet(a, "F (connect timeout)")

    # ---- G. slow reader: memory at its bound ------------------------------
    cfg = a.cli("show config")
    rcv = int(re.search(r"rcv_buf:\s+(\d+)", cfg).group(1))
    snd = int(re.search(r"snd_buf:\s+(\d+)", cfg).group(1))
    # One direction: the client side's receive queue and the backend side's
    # send queue (docs/load-balancer.md), plus seam chunks.
    bound = (rcv + snd) // 2048 + 4
    code = CLIENT + r"""
s = conn(90)
s.setblocking(False)
sent, t = 0, time.time()
blob = b"z" * 65536
while time.time() - t < 6:
    try:
        sent += s.send(blob)
    except BlockingIOError:
        time.sleep(0.01)
print(sent)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
"""
    p = subprocess.Popen(["ip", "netns", "exec", a.ns, "/usr/bin/python3", "-c", code], stdout=subprocess.PIPE)
    high = 0
    while p.poll() is None:
        lc = a.cli("show lcores")
        high = max([high] + [int(x) for x in re.findall(r"chunks_in_use:\s+(\d+)", lc)])
        time.sleep(0.2)
    sent = int(p.stdout.read().decode())
    print(f"slow reader: {sent} bytes accepted in 6 s; chunks in use at most {high}, bound {bound}")
    check(sent < 16 << 20, f"back-pressure: the client could not push more than the backend drains ({sent})")
    check(bound // 2 <= high <= bound, f"proxy memory filled to its bound and no further ({high} chunks, bound {bound})")
    quiet(a, "G")

    # ---- H. kill a backend, drain ---------------------------------------
    conns = r"""
socks, where = [], {}
for i in range(30):
    s = conn(73)
    line = b""
    while not line.endswith(b"\n"): line += s.recv(1)
    socks.append(s); where[s] = line.decode().strip()
def ping(ss):
    ok = 0
    for s in ss:
        try:
            s.sendall(b"ping"); ok += recv_all(s, 4) == b"ping"
        except OSError: pass
    return ok
print("spread", sorted(set(where.values())))
sys.stdout.flush()
"""
    r = a.python(CLIENT + conns + r"""
victim = [s for s in socks if where[s] == "198.18.0.13"]
others = [s for s in socks if where[s] != "198.18.0.13"]
os.system("pkill -f 'lb_backend[.]py 198.18.0.13'")
time.sleep(0.5)
print("others", len(others), ping(others))
time.sleep(2.5)
new = {}
for i in range(30):
    s = conn(73)
    line = b""
    while not line.endswith(b"\n"): line += s.recv(1)
    new[line.decode().strip()] = new.get(line.decode().strip(), 0) + 1
    s.close()
print("new", sorted(new))
print("others again", len(others), ping(others))
""", timeout=120)
    out = r.stdout.decode()
    print(out.strip())
    check("'198.18.0.13'" in out.split("\n")[0], "the long-lived flows used all three backends")
    m = re.search(r"^others (\d+) (\d+)$", out, re.M)
    check(m and m.group(1) == m.group(2), "after a backend died, the flows on the others keep transferring")
    m2 = re.search(r"^new (.*)$", out, re.M)
    check(m2 and "198.18.0.13" not in m2.group(1), f"new flows avoid the dead backend ({m2 and m2.group(1)})")
    bs = backends(a)
    check(bs[("who", "198.18.0.13:7200")]["state"] == "down", "show backends marks it down")
    quiet(a, "H (kill)")
    out = a.cli("pool drain who 198.18.0.12:7200")
    check("draining" in out, f"pool drain answers ({out.strip()})")
    check(backends(a)[("who", "198.18.0.12:7200")]["state"] == "drain", "show backends says drain")
    r = a.python(CLIENT + r"""
new = {}
for i in range(20):
    s = conn(73)
    line = b""
    while not line.endswith(b"\n"): line += s.recv(1)
    new[line.decode().strip()] = 1
    s.close()
print(sorted(new))
""")
    check(r.stdout.decode().strip() == "['198.18.0.11']", f"drain: new flows go elsewhere ({r.stdout.decode().strip()})")
    out = a.cli("pool add who 198.18.0.12:7200 weight 2")
    check("added" in out and backends(a)[("who", "198.18.0.12:7200")]["weight"] == 2,
          "pool add re-enables and re-weights a drained backend")
    check("error" in a.cli("pool del who 198.18.0.99:7200"), "pool del of an unknown backend is an error")
    check("error" in a.cli("pool add nosuch 198.18.0.11:1"), "pool add to an unknown pool is an error")
    quiet(a, "H (drain)")

    # ---- I. a backend nobody has talked to yet: the first SYN waits for ARP,
    #      it is not lost (no 1 s retransmission)
    sh(f"ip netns exec {a.ns} ip addr add 198.18.0.14/24 dev {a.tap}")
    p = subprocess.Popen(["ip", "netns", "exec", a.ns, "socat", "TCP-LISTEN:7,bind=198.18.0.14,fork,reuseaddr", "EXEC:cat"])
    try:
        # socat listening, not a fixed sleep: on a loaded machine it may take
        # longer to start, and a SYN before then gets the kernel's RST (the
        # one backend refused: the client is reset).
        a.wait_for(lambda: "198.18.0.14:7 " in a.run(["ss", "-ltnH"], check=False).stdout.decode(),
                   what="socat listening on 198.18.0.14:7")
        held = a.stats().get("arp_held_sent", 0)
        try:
            r = a.python(CLIENT + r"""
t = time.time()
s = conn(94)
s.sendall(b"first")
print(recv_all(s, 5).decode(), round(time.time() - t, 2))
""")
        except RuntimeError:
            print(a.cli("show backends"))  # what the backend side saw, for the record
            print({k: v for k, v in a.stats().items() if "arp" in k or "held" in k})
            raise
        f = r.stdout.decode().split()
        check(f[0] == "first" and float(f[1]) < 0.9 and a.stats().get("arp_held_sent", 0) > held,
              f"the first SYN to an unresolved backend waited for ARP and went out ({f[1]} s)")
    finally:
        p.kill()
    quiet(a, "I")

    lc = a.cli("show lcores")
    check(all(x == "0" for x in re.findall(r"chunks_in_use:\s+(\d+)", lc)), "no buffer chunk left in use")
    pools = a.cli("show pools")
    check("pool web: 2/3 backends up" in pools and "pool who: 2/3 backends up" in pools and "proxied:" in pools,
          "show pools summarises every pool (198.18.0.13 is dead)")
    tb = a.telemetry("/tcpterm/backends")
    w = tb.get("web_198_18_0_11_8080", {})
    check(w.get("state") == "up" and w.get("connects_ok", 0) >= 45 and tb["who_198_18_0_13_7200"]["state"] == "down",
          "/tcpterm/backends: state, connects and bytes per backend")
    a.quit()


main()
print("all ok")
