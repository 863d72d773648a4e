#!/usr/bin/python3
"""Two worker lcores on one port: a two-queue TAP, each worker polling its
own queue with its own flow table, wheel and TIME-WAIT records.  The kernel
picks the queue of each frame it sends to the TAP by its own hash (for a
flow's first reply, not even the queue our side wrote on), so tcpterm steers
in software (dp/rss.h): the lcore that receives a frame hands it to the lcore
its tuple names.  Every connection must complete, and no segment may meet a
flow table without its flow (that would show as an RST, an ACK to a
listener or a failed cookie):
  A. 2 x 600 HTTP/1.0 clients (the server role), both lcores in use;
  B. the proxy to a Linux backend: the backend's replies to the proxy's
     active opens reach the lcore that opened them (without steering, half
     of them met the other lcore's table and were answered with RST), and
     the health checks each lcore opens get their replies too;
  C. IPv6 clients: the tuple of IPv6 segments names their owner too, and
     every lcore learns the kernel's Neighbor Advertisements; a SYN behind
     extension headers goes to the same lcore as the rest of its flow, and
     a Packet Too Big to the lcore of the flow it quotes; the
     proxy's active opens to an IPv6 backend come back to their lcore."""
import contextlib
import os
import re
import subprocess
import time
from harness import Appliance, check, sh

HERE = os.path.dirname(os.path.abspath(__file__))

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


# N_CONN HTTP/1.0 clients of ADDR:80, 16 at a time; prints how many got a
# whole response that OK_EXPR (over `data`) accepts.
CLIENT = """
import socket
from concurrent.futures import ThreadPoolExecutor
def one(i):
    s = socket.create_connection((ADDR, 80), timeout=10)
    s.sendall(b"GET /%d HTTP/1.0\\r\\n\\r\\n" % i)
    data = b""
    while True:
        c = s.recv(65536)
        if not c: break
        data += c
    s.close()
    head, _, body = data.partition(b"\\r\\n\\r\\n")
    return OK_EXPR
with ThreadPoolExecutor(16) as ex:
    print(sum(ex.map(one, range(N_CONN))))
"""
HTTP_OK = 'head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 16" in head and len(body) == 16'


def show_where(a):
    """Prints where the flows are and what the appliance counted, so a
    failed wait or a failed client can be read from the log."""
    print("lcores:", per_lcore(a))
    print("states:", {k: v for k, v in a.states().items() if v})
    print("counters:", {k: v for k, v in a.stats().items() if v})
    print(a.cli("show pools"))


def wait_time_wait(a, n, what):
    """Waits until the lcores hold n TIME-WAIT records in all.  A client's
    FIN lost under load (a busy CI machine, the ASan build) comes back by
    retransmission with exponential backoff, tens of seconds after a few
    losses; the records cannot expire before 2 x MSL (120 s here).  On a
    timeout, says where the flows are (show_where)."""
    try:
        a.wait_for(lambda: sum(v.get("time_wait", 0) for v in per_lcore(a).values()) == n,
                   timeout=90, what=what)
    except AssertionError:
        show_where(a)
        raise


def clients(a, addr, n, ok_expr=HTTP_OK):
    """Runs the clients in the namespace; how many succeeded.  A client
    that fails (reset, timed out) fails the run, after show_where."""
    try:
        r = a.python(CLIENT.replace("ADDR", repr(addr)).replace("N_CONN", str(n)).replace("OK_EXPR", ok_expr))
    except RuntimeError:
        show_where(a)
        raise
    return int(r.stdout.decode().strip() or 0)


@contextlib.contextmanager
def backend(a, addr):
    """A Linux backend (lb_backend.py) on addr in the namespace, for the block."""
    log = f"/tmp/{a.ns}-backends.log"
    open(log, "w").close()
    v6 = ":" in addr
    sh(f"ip netns exec {a.ns} ip {'-6 ' if v6 else ''}addr add {addr}/{64 if v6 else 24} dev {a.tap}"
       + (" nodad" if v6 else ""))
    b = subprocess.Popen(["ip", "netns", "exec", a.ns, "/usr/bin/python3",
                          os.path.join(HERE, "lb_backend.py"), addr, log])
    try:
        a.wait_for(lambda: "ready" in open(log).read(), what="backend ready")
        yield
    finally:
        b.kill()
        b.wait()
        os.unlink(log)


with Appliance(listen=["198.18.0.2:80/http,body=16"], msl_ms=60000, workers=2) as a:
    info = a.cli("show port info all")
    check("Queues: 2" in info, "the TAP has one queue per worker (show port info: Queues: 2)")
    check("Flow steering: software" in info, "a TAP's queues are steered in software (show port info)")
    lc = per_lcore(a)
    check(len(lc) == 2 and sorted(v["queue"] for v in lc.values()) == [0, 1],
          f"two worker lcores, queues 0 and 1 ({sorted(lc)})")

    ok = clients(a, "198.18.0.2", N)
    check(ok == N, f"{N} HTTP/1.0 connections over two queues, every response whole ({ok})")

    # HTTP/1.0: the appliance closes first, so each connection ends in a
    # TIME-WAIT record on the lcore that owned it.
    wait_time_wait(a, N, f"{N} TIME-WAIT records across the lcores")
    lc = per_lcore(a)
    tw = {k: v["time_wait"] for k, v in lc.items()}
    check(all(v > 0 for v in tw.values()), f"both lcores terminated connections (TIME-WAIT per lcore {tw})")
    check(all(v["rx_packets"] > 0 and v["tx_packets"] > 0 for v in lc.values()),
          "both lcores received and sent on their own queue")
    out_, in_ = sum(v["steered_out"] for v in lc.values()), sum(v["steered_in"] for v in lc.values())
    check(in_ >= out_ > 0,  # in: also each lcore's copy of an ARP reply another received
          f"show lcores: what one lcore handed over, the other took in ({out_}, {in_})")
    st = a.stats()
    for k in ("resets_out", "rst_to_unknown", "ack_to_listener", "syncookies_failed"):
        check(st.get(k, 0) == 0, f"no segment reached an lcore without its flow ({k} {st.get(k)})")
    check(st["passive_opens"] == N and st["tw_entered"] == N,
          f"every SYN opened one flow, every flow entered TIME-WAIT ({st['passive_opens']}, {st['tw_entered']})")

    # A second wave from the same client reuses the kernel's ports, landing on
    # TIME-WAIT records that must be found on their own lcore (a SYN that
    # reached the other lcore would open a duplicate flow or be refused).
    ok = clients(a, "198.18.0.2", N)
    check(ok == N, f"a second wave of {N} completes too ({ok})")
    st = a.stats()
    check(st["resets_out"] == 0 and st["rst_to_unknown"] == 0, "no resets after the second wave")
    check(st["steered_out"] > 0 and st["steered_in"] >= st["steered_out"] and st["steer_dropped"] == 0,
          f"frames were handed between the lcores, none dropped (out {st['steered_out']}, in {st['steered_in']})")
    a.quit()

# ---- B. the proxy's active opens on two queues -----------------------------
with Appliance(listen=["198.18.0.2:80/proxy,pool=web"], workers=2,
               extra=["--pool", "web=198.18.0.11:8080,check=none"]) as a:
    with backend(a, "198.18.0.11"):
        ok = clients(a, "198.18.0.2", N // 2,
                     'data.startswith(b"HTTP/1.0 200 OK") and data.endswith(b"backend 198.18.0.11\\n")')
        check(ok == N // 2, f"{N // 2} clients through the proxy, each answered by the backend ({ok})")
        st = a.stats()
        for k in ("resets_out", "rst_to_unknown", "no_listener", "ack_to_listener", "syncookies_failed",
                  "timeout_syn_sent", "connect_failed"):
            check(st.get(k, 0) == 0, f"every backend reply reached the lcore that opened its flow ({k} {st.get(k)})")
        check(st["active_opens"] == N // 2, f"one backend connection per client ({st['active_opens']})")
        tw = {k: v["time_wait"] for k, v in per_lcore(a).items()}
        check(all(v > 0 for v in tw.values()), f"both lcores proxied connections (TIME-WAIT per lcore {tw})")
    a.quit()

# ---- B2. health checks from both lcores --------------------------------------
# A backend is `up` only where every lcore sees it up: each lcore's checks
# are its own active opens, so both must get their replies.
with Appliance(listen=[], workers=2,
               extra=["--pool", "chk=198.18.0.11:8080,check=http,path=/health,interval=200,rise=2,fall=2"]) as a:
    with backend(a, "198.18.0.11"):
        # The first checks went out before the backend's address existed:
        # wait until they are over, then count only what follows.
        a.wait_for(lambda: a.stats()["entered_ESTABLISHED"] >= 4 and a.states()["SYN-SENT"] == 0,
                   what="the first checks over, later ones connecting")
        a.cli("clear tcp stats")
        time.sleep(2.0)  # about ten more checks from each lcore
        line = [ln for ln in a.cli("show backends chk").split("\n") if "198.18.0.11:8080" in ln][0].split()
        st = a.stats()
        est = st["entered_ESTABLISHED"]
        # A SYN-ACK that met the other lcore's table would leave its check
        # in SYN-SENT (retransmitted, then timed out) and mark the backend
        # down on that lcore.  (Each check ends with our RST while the
        # backend's FIN is on its way, so the FIN meets no flow by design.)
        check(line[2] == "up" and est >= 10 and est >= st["active_opens"] - 2,
              f"health checks from both lcores connect: up, {est} of {st['active_opens']} checks established")
        check(st["syn_retransmits"] == 0 and st["timeout_syn_sent"] == 0,
              f"every check's SYN-ACK reached the lcore that opened it (SYN retransmissions "
              f"{st['syn_retransmits']}, SYN-SENT timeouts {st['timeout_syn_sent']})")
    a.quit()

# ---- C. IPv6 ---------------------------------------------------------------
with Appliance(listen=["[2001:2::2]:80/http,body=16"], msl_ms=60000, workers=2, ipv6=True) as a:
    ok = clients(a, "2001:2::2", N // 2)
    check(ok == N // 2, f"{N // 2} IPv6 HTTP/1.0 connections over two queues ({ok})")
    wait_time_wait(a, N // 2, f"{N // 2} IPv6 TIME-WAIT records")
    tw = {k: v["time_wait"] for k, v in per_lcore(a).items()}
    check(all(v > 0 for v in tw.values()), f"both lcores terminated IPv6 connections ({tw})")
    st = a.stats()
    check(st["resets_out"] == 0 and st["rst_to_unknown"] == 0 and st["steered_out"] > 0,
          f"IPv6: no resets, frames steered ({st['steered_out']})")

    # Crafted (scapy, from an address the kernel does not own): each SYN
    # carries hop-by-hop and destination-options headers, the rest of the
    # flow none.  Sixteen flows: some SYN lands on the lcore that does not
    # own its tuple, and must be handed over like the rest of the flow.
    amac = re.search(r"lladdr (\S+)", a.run(["ip", "-6", "neigh", "show", "2001:2::2"]).stdout.decode()).group(1)
    r = a.python(f"""
import time
from scapy.all import (Ether, IPv6, TCP, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, ICMPv6PacketTooBig, raw, sendp,
                       AsyncSniffer, conf)
conf.verb = 0
IFACE, AMAC, ME, SPOOF, SMAC = "{a.tap}", "{amac}", "2001:2::2", "2001:2::98", "02:00:00:00:00:98"
ports = list(range(43000, 43016))
def grab(action):
    sn = AsyncSniffer(iface=IFACE, filter="ip6 and tcp and src host " + ME)
    sn.start(); time.sleep(0.4); action(); time.sleep(1.0); sn.stop()
    return list(sn.results or [])
E = Ether(src=SMAC, dst=AMAC)
syns = [E/IPv6(src=SPOOF, dst=ME)/IPv6ExtHdrHopByHop()/IPv6ExtHdrDestOpt()/TCP(sport=p, dport=80, flags="S", seq=1000, options=[("MSS", 1440)])
        for p in ports]
sa = {{q[TCP].dport: q[TCP].seq for q in grab(lambda: sendp(syns, iface=IFACE)) if q[TCP].flags == "SA"}}
acks = [E/IPv6(src=SPOOF, dst=ME)/TCP(sport=p, dport=80, flags="PA", seq=1001, ack=sa[p] + 1)/b"GET / HTTP/1.0\\r\\n\\r\\n"
        for p in ports if p in sa]
resp = {{q[TCP].dport: q for q in grab(lambda: sendp(acks, iface=IFACE))
        if bytes(q[TCP].payload).startswith(b"HTTP/1.1 200")}}
# Each response is still unacknowledged: a Packet Too Big quoting it is
# for the lcore that owns the flow, wherever the kernel queues it.
sendp([E/IPv6(src="2001:2::1", dst=ME)/ICMPv6PacketTooBig(mtu=1280)/raw(q[IPv6])[:200] for q in resp.values()],
      iface=IFACE)
time.sleep(0.5)
for p in ports:  # leave nothing half-open
    sendp(E/IPv6(src=SPOOF, dst=ME)/TCP(sport=p, dport=80, flags="R", seq=1001 + 19), iface=IFACE)
print(len(sa), len(resp))
""")
    nsa, ngot = r.stdout.decode().split()
    check(nsa == "16" and ngot == "16",
          f"16 SYNs behind extension headers: each answered, each flow's request answered ({nsa}, {ngot})")
    st = a.stats()
    check(st["pmtu_lowered"] == 16 and st["pmtu_ignored"] == 0,
          f"16 Packet Too Big, each quoting a flow's segment: each reached the flow's lcore "
          f"(lowered {st['pmtu_lowered']}, ignored {st['pmtu_ignored']})")
    a.quit()

# IPv4 clients through the proxy to an IPv6 backend: the IPv6 source ports
# are chosen by the same hash that steers the backend's replies.
with Appliance(listen=["198.18.0.2:80/proxy,pool=v6"], workers=2, ipv6=True,
               extra=["--pool", "v6=[2001:2::11]:8080,check=none"]) as a:
    with backend(a, "2001:2::11"):
        ok = clients(a, "198.18.0.2", N // 4,
                     'data.startswith(b"HTTP/1.0 200 OK") and data.endswith(b"backend 2001:2::11\\n")')
        st = a.stats()
        check(ok == N // 4 and st["active_opens"] == N // 4,
              f"{N // 4} IPv4 clients through the proxy to an IPv6 backend ({ok}, {st['active_opens']} backend connections)")
        check(st["no_listener"] == 0 and st["rst_to_unknown"] == 0 and st["timeout_syn_sent"] == 0
              and st["steered_out"] > 0,
              f"the IPv6 backend's replies reached their lcores (steered {st['steered_out']})")
    a.quit()
