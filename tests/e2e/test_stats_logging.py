#!/usr/bin/python3
"""--stats-period prints a compact block every S seconds; rare data-plane
events (here: the flow table full) are logged by the control plane, rate
limited, while the data plane only counts."""
import os
import re
import subprocess
import time

from harness import BIN, check

ns = f"ttst{os.getpid() % 10000}"
log = f"/tmp/{ns}.log"
subprocess.run(["ip", "netns", "add", ns], check=True)
try:
    p = subprocess.Popen(["ip", "netns", "exec", ns, BIN, "-l", "0,1", "--no-huge", "-m", "512", "--no-pci",
                          "--file-prefix", ns, "--vdev", f"net_tap0,iface={ns}t", "--",
                          "--listen", "198.18.0.2:80/http", "--stats-period", "1", "--run-seconds", "6",
                          "--max-flows", "2", "--log-file", log, "--idle-sleep-us", "50"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for _ in range(40):
        if subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "show", f"{ns}t"], capture_output=True).returncode == 0:
            break
        time.sleep(0.25)
    subprocess.run(f"ip netns exec {ns} ip addr add 198.18.0.1/24 dev {ns}t && ip netns exec {ns} ip link set {ns}t up",
                   shell=True, check=True)
    time.sleep(0.5)
    # Six idle connections against a table of two: four SYNs are refused.
    holder = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", """
import socket, time
ss = []
for i in range(6):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("198.18.0.2", 80))
    except BlockingIOError: pass
    ss.append(s)
time.sleep(4)
"""])
    out, _ = p.communicate(timeout=60)
    holder.wait(timeout=20)
    text = out.decode(errors="replace")
    blocks = text.count("---- tcpterm stats at")
    check(p.returncode == 0, "tcpterm exited 0 after --run-seconds")
    check(blocks >= 4, f"--stats-period 1 printed {blocks} blocks in 6 s")
    block = text[text.rfind("---- tcpterm stats at"):]
    for k in ("ESTABLISHED:", "TIME-WAIT:", "cps:", "teardowns_per_s:", "drops:", "rx_pps:"):
        check(k in block, f"the block has {k}")
    check(re.search(r"ESTABLISHED: 2\b", text) is not None, "two flows held at the cap")
    logtext = open(log).read()
    warn = [l for l in logtext.splitlines() if "flow table full" in l]
    check(len(warn) >= 1, f"the control plane logged the full flow table ({warn[:1]})")
    check(len(warn) <= 6, f"rate limited: at most one line a second ({len(warn)})")
    check(re.search(r"mbufs: (\d+)/\1 back", text) is not None, "all mbufs back")
finally:
    subprocess.run(["ip", "netns", "del", ns])
    if os.path.exists(log):
        os.unlink(log)
print("all ok")
