#!/usr/bin/python3
"""Hostile input through the TAP, crafted with scapy inside the namespace:
SYN flood (SYN cookies engage, half-open state stays bounded), valid and
forged cookie ACKs, blind in-window RST and SYN against a live connection
(RFC 5961 challenge ACKs, rate limited per flow), a flood of 1-byte
out-of-order segments (reassembly bounded), an out-of-window ACK storm
(damped).  After each: the reply or silence, the counter, and a real Linux
client completing a request; at the end no flow, no timer, no mbuf is left."""
import time
from harness import Appliance, check

SPOOF = "198.18.0.99"  # not owned by the kernel: nothing answers tcpterm's replies

PRELUDE = r"""
import random, socket, time, sys
from scapy.all import IP, TCP, Raw, send, AsyncSniffer, conf
conf.verb = 0
ME = "198.18.0.2"
def capture(iface, filt, action, settle=0.6):
    sn = AsyncSniffer(iface=iface, filter=filt)
    sn.start(); time.sleep(0.4)
    action()
    time.sleep(settle)
    sn.stop()
    return list(sn.results or [])
"""

with Appliance(listen=["198.18.0.2:80/http", "198.18.0.2:7/echo"], msl_ms=1000,
               extra=["--syn-backlog", "50", "--synack-retries", "1", "--orphan-retries", "2",
                      "--fin-wait-2-timeout-ms", "2000"]) as a:
    tap = a.tap

    def curl_ok(what):
        r = a.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://198.18.0.2/"], check=False)
        check(r.stdout == b"200", f"a Linux client completes a request {what}")

    # ---- A. SYN flood from a spoofed source --------------------------------
    a.cli("clear tcp stats")
    a.python(PRELUDE + f"""
pkts = [IP(src="{SPOOF}", dst=ME)/TCP(sport=random.randint(1024, 65000), dport=80, flags="S",
        seq=random.getrandbits(32), options=[("MSS", 1460)]) for _ in range(2000)]
send(pkts, inter=0)
""", timeout=120)
    s, st = a.states(), a.stats()
    check(s["SYN-RECEIVED"] <= 50, f"SYN flood: half-open flows bounded by the backlog ({s['SYN-RECEIVED']})")
    check(st["syncookies_sent"] >= 1900, f"SYN flood: answered with SYN cookies ({st['syncookies_sent']})")
    curl_ok("during the SYN flood's aftermath")
    a.wait_for(lambda: a.states()["SYN-RECEIVED"] == 0, timeout=20, what="half-open flows to time out")
    check(a.stats()["timeout_syn_received"] >= 1, "half-open flows reclaimed after their SYN-ACK retries")

    # ---- B/C. Cookie ACKs: a valid one completes, a forged one is reset ------
    a.cli("set syncookies on")
    before = a.stats()
    r = a.python(PRELUDE + f"""
sport = 40001
res = capture("{tap}", "tcp and dst host {SPOOF}", lambda: send(IP(src="{SPOOF}", dst=ME)/TCP(
    sport=sport, dport=80, flags="S", seq=1000, options=[("MSS", 1400)])))
sa = [p for p in res if p[TCP].dport == sport and p[TCP].flags == "SA"]
cookie = sa[0][TCP].seq
def rest():
    send(IP(src="{SPOOF}", dst=ME)/TCP(sport=sport, dport=80, flags="PA", seq=1001, ack=cookie + 1, window=8000)
         /Raw(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"))
    time.sleep(0.3)
    # A forged cookie: an ACK that no SYN-ACK of ours carried.
    send(IP(src="{SPOOF}", dst=ME)/TCP(sport=40002, dport=80, flags="A", seq=5, ack=0x1234567, window=8000))
res = capture("{tap}", "tcp and dst host {SPOOF}", rest)
resp = [p for p in res if p[TCP].dport == sport and Raw in p]
rst = [p for p in res if p[TCP].dport == 40002]
# The peer ends its connection properly: an RST at exactly RCV.NXT.
send(IP(src="{SPOOF}", dst=ME)/TCP(sport=sport, dport=80, flags="R", seq=1001 + 27))
print(len(sa), int(bool(resp)) and int(bytes(resp[0][Raw]).startswith(b"HTTP/1.1 200 OK")),
      rst[0][TCP].flags if rst else "-", rst[0][TCP].seq if rst else -1)
""")
    out = r.stdout.decode().split()
    check(out[0] == "1", "a SYN under cookies gets one SYN-ACK and no state")
    check(out[1] == "1", "the cookie ACK (with PSH and a request) completes the handshake: 200 OK")
    check(out[2] == "R" and int(out[3]) == 0x1234567, "a forged cookie ACK gets <SEQ=SEG.ACK><CTL=RST>")
    st = a.stats()
    check(st["syncookies_ok"] - before["syncookies_ok"] == 1 and st["syncookies_failed"] > before["syncookies_failed"],
          f"cookie counters (ok {st['syncookies_ok']}, failed {st['syncookies_failed']})")
    a.cli("set syncookies auto")
    curl_ok("after the cookie handshakes")

    # ---- D. Blind RST / SYN in the window of a live connection -------------
    r = a.python(PRELUDE + f"""
c = socket.create_connection((ME, 7), timeout=5)
port = c.getsockname()[1]
def hello():
    c.sendall(b"hello"); assert c.recv(10) == b"hello"
res = capture("{tap}", f"tcp and port {{port}}", hello, 0.3)
last = [p for p in res if p[TCP].sport == port][-1][TCP]
nxt = last.seq + (len(last.payload) if Raw in last else 0)
tsv = dict(last.options).get("Timestamp", (0, 0))[0]  # the kernel's clock: a blind attacker can guess it
def blind():
    for i in range(30):   # in window, never exact: challenge ACKs, rate limited
        send(IP(src="198.18.0.1", dst=ME)/TCP(sport=port, dport=7, flags="R", seq=nxt + 1000 + i))
    # With a (guessed, newer) timestamp: without one, RFC 7323 3.2 drops it first.
    send(IP(src="198.18.0.1", dst=ME)/TCP(sport=port, dport=7, flags="S", seq=nxt + 77,
                                          options=[("Timestamp", (tsv + 1000, 0))]))
res = capture("{tap}", f"tcp and port {{port}}", blind, 0.3)
c.sendall(b"still"); ok = c.recv(10) == b"still"
acks = [p for p in res if p[TCP].dport == port and p[TCP].flags == "A" and Raw not in p]
print(int(ok), len(acks))
c.close()
""")
    ok, acks = r.stdout.decode().split()
    st = a.stats()
    check(ok == "1", "blind in-window RSTs and a SYN do not break the connection")
    check(st["challenge_acks"] >= 1 and st["challenge_acks"] + st["challenge_acks_suppressed"] >= 31,
          f"each got a challenge ACK or was rate limited ({st['challenge_acks']} sent, {st['challenge_acks_suppressed']} suppressed)")
    check(st["challenge_acks"] <= 3, "at most one challenge ACK per flow per interval")

    # ---- E/F. 1-byte out-of-order flood and an out-of-window ACK storm -------
    a.cli("clear tcp stats")
    r = a.python(PRELUDE + f"""
c = socket.create_connection((ME, 7), timeout=5)
port = c.getsockname()[1]
def one():
    c.sendall(b"x"); assert c.recv(10) == b"x"
res = capture("{tap}", f"tcp and port {{port}}", one, 0.3)
last = [p for p in res if p[TCP].sport == port][-1][TCP]
nxt, ack = last.seq + (len(last.payload) if Raw in last else 0), last.ack
tsv = dict(last.options).get("Timestamp", (0, 0))[0]
ts = [("Timestamp", (tsv + 1000, 0))]
send([IP(src="198.18.0.1", dst=ME)/TCP(sport=port, dport=7, flags="A", seq=nxt + 2 + 2 * i, ack=ack, window=60000, options=ts)/Raw(b"z")
      for i in range(800)])
send([IP(src="198.18.0.1", dst=ME)/TCP(sport=port, dport=7, flags="A", seq=nxt + 10000000 + i, ack=ack, window=60000, options=ts)
      for i in range(300)])
time.sleep(0.3)
# The kernel's own stream is untouched by the junk in the holes: its bytes fill
# the gap and the echo continues.
c.sendall(b"after"); got = b""
while len(got) < 5:
    got += c.recv(100)
print(int(got.startswith(b"after") or b"after" in got))
c.close()
""")
    st = a.stats()
    check(st["ooo_segments"] >= 800 and st["ooo_dropped"] >= 790,
          f"1-byte out-of-order flood: at most four holes kept ({st['ooo_dropped']} of {st['ooo_segments']} dropped)")
    check(st["oow_acks_suppressed"] >= 290, f"out-of-window ACK storm damped ({st['oow_acks_suppressed']} replies suppressed)")
    curl_ok("after the floods")

    # ---- nothing left once the timers pass ---------------------------------
    try:
        a.wait_for(lambda: all(v == 0 for k, v in a.states().items() if k != "LISTEN"), timeout=60, every=1,
                   what="every flow to finish")
    except AssertionError:
        print(a.states())
        print(a.cli("show flows 50"))
        raise
    lc = a.counters("show lcores")
    check(lc["flows"] == 0 and lc["time_wait"] == 0, "no TCB, no TIME-WAIT record left")
    tm = a.counters("show timers")
    check(tm["armed"] == 0, "no timer armed")
    a.quit()  # asserts exit 0 and every mbuf back
print("all ok")
