#!/usr/bin/python3
"""IPv6 end to end: real Linux clients over IPv6 (curl -6, Python AF_INET6
sockets, ab) beside IPv4 on the same appliance, and crafted frames from a
source the kernel does not own (scapy inside the namespace): neighbour
solicitation and advertisement (unicast, DAD, hop limit 255), echo,
extension-header chains walked or refused, fragments dropped, a bad TCP
checksum, Packet Too Big then smaller segments on retransmission, and a SYN
flood answered with SYN cookies.  Every refusal is checked by its counter."""
import re
import time
from harness import Appliance, check, KERNEL_IP6, APPLIANCE_IP6

SPOOF = "2001:2::99"      # not owned by the kernel: nothing answers tcpterm's replies
SPOOF_MAC = "02:00:00:00:00:99"

PRELUDE = r"""
import random, socket, time, sys
from scapy.all import (Ether, IPv6, TCP, Raw, ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6NDOptSrcLLAddr,
    ICMPv6NDOptDstLLAddr, ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6PacketTooBig, IPv6ExtHdrHopByHop,
    IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, IPv6ExtHdrFragment, sendp, AsyncSniffer, conf, raw)
conf.verb = 0
ME, SPOOF, SMAC = "%s", "%s", "%s"
def capture(iface, filt, action, settle=0.8):
    sn = AsyncSniffer(iface=iface, filter=filt)
    sn.start(); time.sleep(0.4)
    action()
    time.sleep(settle)
    sn.stop()
    return list(sn.results or [])
""" % (APPLIANCE_IP6, SPOOF, SPOOF_MAC)


with Appliance(listen=["[2001:2::2]:80/http,close=always", "198.18.0.2:80/http", "[2001:2::2]:7/echo",
                       "0.0.0.0:9/discard"],
               ipv6=True, msl_ms=3000, extra=["--syn-backlog", "40", "--synack-retries", "1"]) as a:
    tap = a.tap
    amac = re.search(r"lladdr (\S+)", a.run(["ip", "-6", "neigh", "show", APPLIANCE_IP6]).stdout.decode()).group(1)
    pre = PRELUDE + f'IFACE, AMAC = "{tap}", "{amac}"\n'

    # ---- Real clients -------------------------------------------------------
    r = a.run(["curl", "-6", "-s", "-m", "5", f"http://[{APPLIANCE_IP6}]/"])
    check(r.stdout.startswith(b"tcpterm says hello"), "curl -6 http://[2001:2::2]/ gets the body")
    flows = a.cli("show flows")
    check(re.search(r"\[2001:2::2\]:80\s+\[2001:2::1\]:\d+\s+TIME-WAIT", flows) is not None,
          "show flows: the appliance closed first; TIME-WAIT with both addresses in RFC 5952 form")
    r = a.run(["curl", "-4", "-s", "-m", "5", "http://198.18.0.2/"])
    check(r.stdout.startswith(b"tcpterm says hello"), "IPv4 on the same port and appliance still answers")
    r = a.python(f"""
import socket, hashlib, os
data = os.urandom(1 << 20)
s = socket.create_connection(("{APPLIANCE_IP6}", 7), timeout=20)
assert s.family == socket.AF_INET6
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    c = s.recv(1 << 16)
    if not c: break
    got += c
print(int(got == data), len(got))
""", timeout=120)
    ok, n = r.stdout.decode().split()
    check(ok == "1", f"a Python AF_INET6 client: 1 MiB echoed byte-exact ({n} bytes)")
    # A listener on 0.0.0.0 takes both families.
    r = a.python(f"""
import socket
s = socket.create_connection(("{APPLIANCE_IP6}", 9), timeout=10)
s.sendall(b"x" * 100000)
s.close()
print("done")
""")
    check(r.stdout.strip() == b"done", "a 0.0.0.0 listener (discard) takes an IPv6 client too")
    r = a.run(["ab", "-n", "500", "-c", "20", f"http://[{APPLIANCE_IP6}]/"], timeout=120, check=False)
    out = r.stdout.decode()
    done = re.search(r"Complete requests:\s+(\d+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    check(done and done.group(1) == "500" and failed and failed.group(1) == "0",
          f"ab -n 500 -c 20 over IPv6: all complete, none failed ({done and done.group(1)}, {failed and failed.group(1)})")
    # Listeners at run time.
    out = a.cli("listen 2001:2::2 8080 echo")
    check("listening on [2001:2::2]:8080/echo" in out, f"CLI: listen on an IPv6 address ({out.strip()})")
    probe = f"""
import socket
try:
    s = socket.create_connection(("{APPLIANCE_IP6}", 8080), timeout=5)
    s.sendall(b"cli"); print(s.recv(10).decode())
except ConnectionRefusedError:
    print("refused")
"""
    check(a.python(probe).stdout.strip() == b"cli", "the new IPv6 listener echoes")
    out = a.cli("unlisten [2001:2::2] 8080")
    check("listener removed" in out, f"CLI: unlisten it ({out.strip()})")
    check(a.python(probe).stdout.strip() == b"refused", "a SYN to it is now refused (RST)")
    cfg = a.cli("show config")
    check("addr: 0@2001:2::2/64" in cfg and "listen: [2001:2::2]:80/http" in cfg and "2001:2::/64 on-link" in cfg,
          "show config: the IPv6 address, its on-link prefix and listeners")

    # ---- Neighbour discovery ---------------------------------------------------
    r = a.python(pre + r"""
def ns(hlim=255, src=SPOOF, opt=True):
    p = Ether(src=SMAC, dst="33:33:ff:00:00:02")/IPv6(src=src, dst="ff02::1:ff00:2", hlim=hlim)/ICMPv6ND_NS(tgt=ME)
    if opt: p = p/ICMPv6NDOptSrcLLAddr(lladdr=SMAC)
    return p
res = capture(IFACE, "icmp6", lambda: sendp(ns(), iface=IFACE))
na = [p for p in res if ICMPv6ND_NA in p and p[IPv6].dst == SPOOF]
ok1 = len(na) == 1 and na[0][ICMPv6ND_NA].tgt == ME and na[0][ICMPv6ND_NA].S == 1 and na[0][ICMPv6ND_NA].O == 1 \
      and na[0][ICMPv6NDOptDstLLAddr].lladdr == AMAC and na[0][Ether].dst == SMAC and na[0][IPv6].hlim == 255
res = capture(IFACE, "icmp6", lambda: sendp(ns(hlim=64), iface=IFACE))
ok2 = not [p for p in res if ICMPv6ND_NA in p and p[IPv6].dst == SPOOF]
res = capture(IFACE, "icmp6", lambda: sendp(ns(src="::", opt=False), iface=IFACE))
dad = [p for p in res if ICMPv6ND_NA in p and p[IPv6].dst == "ff02::1"]
ok3 = len(dad) == 1 and dad[0][ICMPv6ND_NA].S == 0 and dad[0][Ether].dst == "33:33:00:00:00:01"
res = capture(IFACE, "icmp6", lambda: sendp(Ether(src=SMAC, dst=AMAC)/IPv6(src=SPOOF, dst=ME)
                                           /ICMPv6EchoRequest(id=77, seq=5, data=b"ping6"), iface=IFACE))
rep = [p for p in res if ICMPv6EchoReply in p and p[IPv6].dst == SPOOF]
ok4 = len(rep) == 1 and rep[0][ICMPv6EchoReply].id == 77 and rep[0][ICMPv6EchoReply].seq == 5 \
      and bytes(rep[0][ICMPv6EchoReply].data) == b"ping6"
print(int(ok1), int(ok2), int(ok3), int(ok4))
""")
    o = r.stdout.decode().split()
    check(o[0] == "1", "NS to the solicited-node group: a solicited, override NA with our MAC, hop limit 255")
    check(o[1] == "1", "NS with hop limit 64 (crossed a router): no answer")
    check(o[2] == "1", "DAD probe for our address (from ::): NA to all-nodes, not solicited")
    check(o[3] == "1", "ICMPv6 echo: the reply carries the identifier, sequence and data")
    ps = a.stats()
    check(ps["nd_bad_hop_limit"] >= 1 and ps["nd_dad_probes_for_ours"] >= 1 and ps["nd_solicitations_in"] >= 2
          and ps["icmp6_echo_replies"] >= 1,
          f"ND counters (in {ps['nd_solicitations_in']}, bad hop limit {ps['nd_bad_hop_limit']}, "
          f"DAD {ps['nd_dad_probes_for_ours']}, echo {ps['icmp6_echo_replies']})")

    # ---- Extension headers, fragments, checksums ---------------------------
    a.cli("clear tcp stats")
    r = a.python(pre + r"""
def syn(sport, *ext, dport=80):
    p = IPv6(src=SPOOF, dst=ME)
    for e in ext: p = p/e
    return Ether(src=SMAC, dst=AMAC)/p/TCP(sport=sport, dport=dport, flags="S", seq=1, options=[("MSS", 1440)])
def answers(sport, pkt):
    res = capture(IFACE, "ip6 and tcp", lambda: sendp(pkt, iface=IFACE))
    return [p for p in res if TCP in p and p[TCP].dport == sport and p[IPv6].dst == SPOOF]
a1 = answers(41001, syn(41001, IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt()))
a2 = answers(41002, syn(41002, IPv6ExtHdrRouting(type=0, addresses=["2001:2::3"])))
a3 = answers(41003, syn(41003, IPv6ExtHdrFragment(offset=0, m=0, id=9)))
a4 = answers(41004, syn(41004, *[IPv6ExtHdrDestOpt() for _ in range(9)]))
bad = syn(41005)
b = bytearray(raw(bad)); b[-1] ^= 0xff          # the last option byte: the checksum no longer holds
a5 = answers(41005, Ether(bytes(b)))
a6 = answers(41006, syn(41006, IPv6ExtHdrDestOpt(options=[])/IPv6ExtHdrDestOpt()))
sa = a1[0][TCP] if a1 else None
mss = dict(sa.options).get("MSS") if sa else None
for p in a1 + a6:   # close the half-open flows politely
    sendp(Ether(src=SMAC, dst=AMAC)/IPv6(src=SPOOF, dst=ME)/TCP(sport=p[TCP].dport, dport=80, flags="R", seq=2), iface=IFACE)
print(len(a1), mss, len(a2), len(a3), len(a4), len(a5), len(a6))
""")
    n1, mss, n2, n3, n4, n5, n6 = r.stdout.decode().split()
    st = a.stats()
    check(n1 == "1" and mss == "1440", f"SYN behind hop-by-hop + destination options: SYN-ACK, MSS {mss} (1500 - 60)")
    check(n2 == "0" and st["drop_ipv6_routing_header"] == 1, "routing header type 0: dropped and counted (RFC 5095)")
    check(n3 == "0" and st["drop_ipv6_fragment"] == 1, "a fragment (even an atomic one): dropped and counted")
    check(n4 == "0" and st["drop_ipv6_ext_chain_too_long"] == 1, "nine destination-options headers: dropped and counted")
    check(n5 == "0" and st["drop_tcp_bad_checksum"] == 1, "bad TCP checksum over the IPv6 pseudo-header: dropped and counted")
    check(n6 == "1", "two destination-options headers: walked, answered")

    # ---- Packet Too Big: the retransmission uses the smaller MSS -----------
    a.cli("clear tcp stats")
    r = a.python(pre + r"""
sport = 42001
E = Ether(src=SMAC, dst=AMAC)
res = capture(IFACE, "ip6 and tcp", lambda: sendp(E/IPv6(src=SPOOF, dst=ME)/TCP(sport=sport, dport=7, flags="S", seq=100,
               options=[("MSS", 1440)]), iface=IFACE), settle=0.4)
sa = [p for p in res if TCP in p and p[TCP].dport == sport][0]
isn = sa[TCP].seq
data = bytes(random.getrandbits(8) for _ in range(1400))
def go():
    sendp(E/IPv6(src=SPOOF, dst=ME)/TCP(sport=sport, dport=7, flags="A", seq=101, ack=isn + 1, window=65535), iface=IFACE)
    sendp(E/IPv6(src=SPOOF, dst=ME)/TCP(sport=sport, dport=7, flags="PA", seq=101, ack=isn + 1, window=65535)/Raw(data), iface=IFACE)
res = capture(IFACE, "ip6 and tcp", go, settle=0.3)
echo = [p for p in res if TCP in p and p[TCP].dport == sport and Raw in p]
first = len(echo[0][Raw]) if echo else 0
# Packet Too Big from a router on the path, quoting the echo segment.
quoted = raw(echo[0][IPv6])[:1232]
def ptb():
    sendp(E/IPv6(src="2001:2::1", dst=ME)/ICMPv6PacketTooBig(mtu=1280)/Raw(quoted), iface=IFACE)
res = capture(IFACE, "ip6 and tcp", ptb, settle=4.0)
rtx = [p for p in res if TCP in p and p[TCP].dport == sport and Raw in p][:1]
# After a timeout the window is one segment (RFC 5681): acknowledge it for the rest.
if rtx:
    got = len(rtx[0][Raw])
    res = capture(IFACE, "ip6 and tcp", lambda: sendp(E/IPv6(src=SPOOF, dst=ME)/TCP(sport=sport, dport=7, flags="A",
                  seq=1501, ack=isn + 1 + got, window=65535), iface=IFACE), settle=1.0)
    rtx += [p for p in res if TCP in p and p[TCP].dport == sport and Raw in p][:1]
sizes = [len(p[Raw]) for p in rtx]
again = b"".join(bytes(p[Raw]) for p in rtx[:2]) if len(rtx) >= 2 else b""
sendp(E/IPv6(src=SPOOF, dst=ME)/TCP(sport=sport, dport=7, flags="R", seq=1501), iface=IFACE)
print(first, sizes[:3], int(again == data))
""", timeout=120)
    out = r.stdout.decode().strip()
    first = int(out.split()[0])
    sizes = re.findall(r"\d+", out[out.index("["):out.index("]")])
    check(first == 1400, f"the echo goes out as one 1400-byte segment before the PTB ({first})")
    check(len(sizes) >= 2 and int(sizes[0]) == 1220 and int(sizes[1]) == 180,
          f"after Packet Too Big (MTU 1280) the retransmission is cut at MSS 1220: {sizes}")
    check(out.endswith("1"), "the retransmitted bytes are the original ones")
    st = a.stats()
    check(st["pmtu_lowered"] == 1, f"pmtu_lowered {st['pmtu_lowered']}")

    # ---- SYN flood over IPv6: cookies, a bounded half-open table -------------
    # The probe's SYN goes out in the middle of the flood, when the backlog
    # is certainly full: the flood's half-open flows live about 3 s
    # (--synack-retries 1), which a loaded machine can spend between two
    # separate scripts, and a SYN after them would be answered statefully.
    a.cli("clear tcp stats")
    r = a.python(pre + r"""
sport = 43001
frames = [Ether(src=SMAC, dst=AMAC)/IPv6(src="2001:2::1:%x" % random.getrandbits(16), dst=ME)/
          TCP(sport=random.randint(1024, 65000), dport=80, flags="S", seq=random.getrandbits(32),
              options=[("MSS", 1440)]) for _ in range(1500)]
probe = raw(Ether(src=SMAC, dst=AMAC)/IPv6(src=SPOOF, dst=ME)/TCP(sport=sport, dport=7, flags="S", seq=500,
            options=[("MSS", 1440)]))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((IFACE, 0))
def flood():
    for k, f in enumerate(frames):
        s.send(raw(f))
        if k % 100 == 99: time.sleep(0.01)
        if k == 999: s.send(probe)
res = capture(IFACE, "ip6 and tcp dst port %d" % sport, flood, settle=0.6)
sa = [p for p in res if TCP in p and p[TCP].dport == sport and int(p[TCP].flags) & 0x12 == 0x12]
print(len(sa), sa[0][TCP].seq if sa else 0)
""", timeout=120)
    n_sa, cookie = (int(x) for x in r.stdout.decode().split())
    s, st = a.states(), a.stats()
    check(s["SYN-RECEIVED"] <= 40, f"SYN flood over IPv6: half-open flows bounded by the backlog ({s['SYN-RECEIVED']})")
    check(st["syncookies_sent"] >= 1000, f"SYN flood over IPv6: answered with SYN cookies ({st['syncookies_sent']})")
    check(n_sa == 1, f"the probe's SYN in the middle of the flood is answered once ({n_sa})")
    r = a.python(pre + r"""
sport, cookie = 43001, %d
E = Ether(src=SMAC, dst=AMAC)
res = capture(IFACE, "ip6 and tcp", lambda: sendp(E/IPv6(src=SPOOF, dst=ME)/TCP(sport=sport, dport=7, flags="PA", seq=501,
               ack=cookie + 1, window=8000)/Raw(b"cookie6"), iface=IFACE), settle=0.6)
echo = [p for p in res if TCP in p and p[TCP].dport == sport and Raw in p]
sendp(E/IPv6(src=SPOOF, dst=ME)/TCP(sport=sport, dport=7, flags="R", seq=508), iface=IFACE)
print(int(bool(echo) and bytes(echo[0][Raw]) == b"cookie6"))
""" % cookie)
    ok = r.stdout.decode().split()
    check(ok == ["1"], "during the flood a cookie handshake over IPv6 completes and echoes")
    check(a.stats()["syncookies_ok"] >= 1, "syncookies_ok counts it")
    r = a.run(["curl", "-6", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", f"http://[{APPLIANCE_IP6}]/"],
              check=False)
    check(r.stdout == b"200", "a Linux client completes a request over IPv6 after the flood")
    a.wait_for(lambda: a.states()["SYN-RECEIVED"] == 0, timeout=30, what="half-open flows to time out")
    a.wait_for(lambda: sum(v for k, v in a.states().items() if k not in ("LISTEN",)) == 0, timeout=30,
               what="every flow and TIME-WAIT record to end")
    check(a.stats()["addr6_table_full"] == 0, "the address table never filled")
    a.quit()
    print("ok: quit: exit 0, every mbuf back")
