#!/usr/bin/python3
"""rte_pdump_init() lets dpdk-dumpcap capture tcpterm's port; the capture
opens in tshark.  DPDK secondary processes cannot attach to a --no-huge
primary, so this test reserves 2 MiB hugepages for itself (and gives them
back); where hugepages cannot be had it says so and passes without running."""
import os
import subprocess
import time

from harness import Appliance, check

NR = "/proc/sys/vm/nr_hugepages"
old = open(NR).read().strip()
mounted_here = False
try:
    with open(NR, "w") as f:
        f.write("256")
    if int(open(NR).read()) < 128:
        raise OSError("not enough hugepages")
    if "hugetlbfs" not in open("/proc/mounts").read():
        os.makedirs("/dev/hugepages", exist_ok=True)
        subprocess.run(["mount", "-t", "hugetlbfs", "nodev", "/dev/hugepages"], check=True)
        mounted_here = True
except (OSError, subprocess.CalledProcessError) as e:
    print(f"SKIPPED: hugepages unavailable here ({e}); dpdk-dumpcap needs them")
    raise SystemExit(0)

try:
    pcap = f"/tmp/dumpcap{os.getpid()}.pcapng"
    with Appliance(listen=["198.18.0.2:80/http"], hugepages=True) as a:
        dc = subprocess.Popen(["dpdk-dumpcap", f"--file-prefix={a.ns}", "-i", "0", "-w", pcap, "-c", "12", "-f", "tcp"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(3)
        for i in range(4):
            a.run(["curl", "-s", "-o", "/dev/null", "http://198.18.0.2/"])
        try:
            out, _ = dc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            dc.kill()
            out, _ = dc.communicate()
        print(out.decode(errors="replace")[-400:])
        a.quit()
    r = subprocess.run(["tshark", "-r", pcap, "-Y", "tcp.port == 80", "-T", "fields", "-e", "ip.src",
                        "-e", "tcp.flags.str"], capture_output=True, text=True)
    rows = [l for l in r.stdout.splitlines() if l.strip()]
    check(len(rows) >= 10, f"tshark reads {len(rows)} TCP frames from the dpdk-dumpcap capture")
    check(any(l.startswith("198.18.0.2") for l in rows) and any(l.startswith("198.18.0.1") for l in rows),
          "both directions captured")
    os.unlink(pcap)
finally:
    with open(NR, "w") as f:
        f.write(old)
    if mounted_here:
        subprocess.run(["umount", "/dev/hugepages"])
print("all ok")
