#!/usr/bin/python3
"""In-process injection through net_pcap: crafted frames in, tcpterm's
replies out, checked one by one; malformed frames dropped and counted by
reason.  No kernel peer, so nothing answers on tcpterm's behalf."""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from scapy.all import ARP, ICMP, IP, TCP, Ether, Raw, rdpcap, wrpcap

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TCPTERM_BIN", os.path.join(TOP, "build", "app", "tcpterm"))
ME, PEER = "198.18.0.2", "198.18.0.1"
PMAC = "02:00:00:00:00:01"
fail = 0


def check(cond, msg):
    global fail
    print(("ok: " if cond else "FAIL: ") + msg)
    fail |= not cond


tmp = tempfile.mkdtemp()
atexit.register(shutil.rmtree, tmp, True)  # a test leaves nothing behind
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # even when stopped by timeout's SIGTERM
inp, outp = os.path.join(tmp, "in.pcap"), os.path.join(tmp, "out.pcap")
eth = Ether(src=PMAC, dst="ff:ff:ff:ff:ff:ff")
frames = [
    eth / ARP(op=1, hwsrc=PMAC, psrc=PEER, pdst=ME),
    eth / IP(src=PEER, dst=ME) / ICMP(id=7, seq=1) / Raw(b"ping"),
    eth / IP(src=PEER, dst=ME) / TCP(sport=1111, dport=80, flags="S", seq=1000, options=[("MSS", 1400)]),
    eth / IP(src=PEER, dst=ME) / TCP(sport=2222, dport=81, flags="S", seq=5000),
    eth / IP(src=PEER, dst=ME) / TCP(sport=3333, dport=80, flags="A", seq=1, ack=424242),
    eth / IP(src=PEER, dst=ME) / TCP(sport=4444, dport=80, flags="R", seq=1),
    # Malformed: each must be dropped and counted.
    eth / IP(src=PEER, dst=ME, chksum=0x1234) / TCP(sport=5, dport=80, flags="S"),
    eth / IP(src=PEER, dst=ME) / TCP(sport=6, dport=80, flags="S", chksum=0x4321),
    eth / IP(src=PEER, dst=ME, flags="MF") / TCP(sport=7, dport=80, flags="S"),
    eth / IP(src=PEER, dst=ME) / TCP(sport=8, dport=80, flags="SF"),
    eth / IP(src=PEER, dst=ME) / TCP(sport=9, dport=80, flags=""),
    eth / IP(src=PEER, dst=ME) / TCP(sport=10, dport=80, flags="FPU"),  # xmas without SYN: valid flags
    eth / IP(src=PEER, dst=ME) / TCP(sport=11, dport=80, flags="S", dataofs=15),
    Ether(bytes(eth / IP(src=PEER, dst=ME) / TCP(sport=12, dport=80, flags="S"))[:30]),  # truncated
    eth / IP(src="198.18.0.9", dst="198.18.0.77") / TCP(sport=13, dport=80, flags="S"),  # not ours
    eth / IP(src=PEER, dst=ME, options=[b"\x01\x01\x01\x00"]) / TCP(sport=14, dport=80, flags="S", seq=77),
]
wrpcap(inp, frames)
cmd = [BIN, "-l", "0,1", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", f"ttpcap{os.getpid()}",
       "--vdev", f"net_pcap0,rx_pcap={inp},tx_pcap={outp}", "--", "-i",
       "--listen", f"{ME}:80/http", "--log-level", "warn"]
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
time.sleep(2)
out, _ = p.communicate(b"show tcp stats\nshow tcp states\nquit\n", timeout=60)
text = out.decode(errors="replace")
check(p.returncode == 0, f"tcpterm exited {p.returncode}")
check(bool(re.search(r"mbufs: (\d+)/\1 back", text)), "every mbuf back in its pool")
stats = {m.group(1).strip(): int(m.group(2)) for m in re.finditer(r"^\s*([A-Za-z0-9_ -]+):\s+(\d+)\s*$", text, re.M)}
sent = rdpcap(outp)
print(f"{len(sent)} frames sent by tcpterm")
arp = [f for f in sent if ARP in f]
check(len(arp) == 1 and arp[0][ARP].op == 2 and arp[0][ARP].psrc == ME and arp[0][Ether].dst == PMAC,
      "ARP request answered with a reply from 198.18.0.2")
icmp = [f for f in sent if ICMP in f]
check(len(icmp) == 1 and icmp[0][ICMP].type == 0 and icmp[0][ICMP].id == 7 and bytes(icmp[0][Raw]) == b"ping",
      "ICMP echo answered")
tcp = [f[TCP] for f in sent if TCP in f]
syn_ack = [t for t in tcp if t.dport == 1111]
check(len(syn_ack) >= 1 and syn_ack[0].flags == "SA" and syn_ack[0].ack == 1001
      and dict(syn_ack[0].options).get("MSS") == 1460, "SYN to a listener: SYN-ACK <ACK=1001> with MSS")
rst81 = [t for t in tcp if t.dport == 2222]
check(len(rst81) == 1 and rst81[0].flags == "RA" and rst81[0].seq == 0 and rst81[0].ack == 5001,
      "SYN to a closed port: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>")
rst_ack = [t for t in tcp if t.dport == 3333]
check(len(rst_ack) == 1 and rst_ack[0].flags == "R" and rst_ack[0].seq == 424242,
      "ACK to no connection: <SEQ=SEG.ACK><CTL=RST>")
check(not [t for t in tcp if t.dport == 4444], "RST to no connection: no reply")
opt = [t for t in tcp if t.dport == 14]
check(len(opt) >= 1 and opt[0].flags == "SA" and opt[0].ack == 78, "IP options skipped: SYN-ACK")
for sport in (5, 6, 7, 8, 9, 11, 12, 13):
    check(not [t for t in tcp if t.dport == sport], f"malformed frame from port {sport}: no reply")
for name in ("drop_ipv4_bad_checksum", "drop_tcp_bad_checksum", "drop_ipv4_fragment", "drop_tcp_bad_flags",
             "drop_tcp_bad_data_offset", "drop_not_for_us"):
    check(stats.get(name, 0) >= 1, f"{name} counted ({stats.get(name)})")
check(stats.get("drop_tcp_bad_flags", 0) == 2, "SYN+FIN and the null scan both counted as bad flags")
check(stats.get("drop_ipv4_short", 0) + stats.get("drop_ipv4_bad_total_length", 0) >= 1, "truncated frame counted")
sys.exit(1 if fail else 0)
