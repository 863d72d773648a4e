#!/usr/bin/python3
"""The CLI through a pipe and through a pseudo-terminal: every command's
output shape, errors for bad commands, `set msl` visible in `show config`
and applied to new TIME-WAIT records, listen/unlisten while traffic runs,
stop/start, and the /tcpterm/* telemetry endpoints."""
import os
import pty
import re
import select
import subprocess
import threading
import time

from harness import Appliance, BIN, check

COUNTER = re.compile(r"^\s*([A-Za-z0-9_ -]+):\s+(\d+)\s*$", re.M)

with Appliance(listen=["198.18.0.2:80/http"], msl_ms=60000) as a:
    # ---- output shapes -------------------------------------------------
    s = a.states()
    check(list(s) == ["LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2",
                      "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"], "show tcp states: ten RFC names")
    ps = a.counters("show port stats all")
    check(all(k in ps for k in ("RX-packets", "TX-packets", "RX-bytes", "TX-bytes", "RX-errors", "TX-errors",
                                "RX-missed")), "show port stats all: RX/TX packets, bytes, errors, missed")
    check("RX-packets" in a.counters("show port stats 0"), "show port stats 0")
    info = a.cli("show port info all")
    check("Driver: net_tap" in info and "MAC address:" in info and "Link status: up" in info
          and "198.18.0.2/24" in info and "Queues: 1" in info, "show port info all: driver, MAC, queues, link, addresses")
    check(len(a.counters("show port xstats all")) > 5, "show port xstats all")
    st = a.stats()
    for k in ("passive_opens", "resets_in", "resets_out", "retransmits", "timeout_fin_wait_2", "tw_expired",
              "drop_tcp_bad_checksum", "challenge_acks"):
        check(k in st, f"show tcp stats has {k}")
    tw = a.counters("show tcp timewait")
    check(tw["record_bytes"] == 32 and tw["cap"] > 0, "show tcp timewait: record size and cap")
    lc = a.cli("show lcores")
    check("busy_percent:" in lc and "rx_packets:" in lc, "show lcores")
    check("level_0:" in a.cli("show timers"), "show timers")
    check("show tcp states" in a.cli("help"), "help lists commands")
    check("set msl" in a.cli("help set"), "help set")

    # ---- errors ----------------------------------------------------------
    check("Command not found" in a.cli("bogus"), "an unknown command: Command not found")
    check("Bad arguments" in a.cli("set msl abc"), "a malformed argument: Bad arguments")
    check("error:" in a.cli("show flows NOT-A-STATE"), "show flows with a bad filter: error")
    check("error:" in a.cli("show port stats 9"), "show port stats of a missing port: error")
    check("error:" in a.cli("set msl 0"), "set msl 0: error")
    check("error:" in a.cli("listen 198.18.0.2 81 nosuchapp"), "listen with an unknown app: error")
    check("error:" in a.cli("unlisten 198.18.0.2 4444"), "unlisten of a missing listener: error")

    # ---- set msl: visible and applied to new records -------------------
    a.cli("set msl 1500")
    check(a.counters("show config")["msl_ms"] == 1500, "set msl 1500 shows in show config")
    a.run(["curl", "-s", "-H", "Connection: close", "-o", "/dev/null", "http://198.18.0.2/"])
    t0 = time.time()
    a.wait_for(lambda: a.states()["TIME-WAIT"] == 1, what="TIME-WAIT")
    a.wait_for(lambda: a.states()["TIME-WAIT"] == 0, timeout=10, what="expiry at the new 2*MSL")
    took = time.time() - t0
    check(2.5 <= took <= 5, f"the new record expired after 2*1500 ms ({took:.1f} s), not 60 s")
    a.cli("set fin-wait-2-timeout 4321")
    check(a.counters("show config")["fin_wait_2_timeout_ms"] == 4321, "set fin-wait-2-timeout shows")

    # ---- listen / unlisten while traffic runs --------------------------
    stop = threading.Event()
    counts = {"ok": 0, "bad": 0}

    def load():
        while not stop.is_set():
            r = a.run(["curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "http://198.18.0.2/"],
                      check=False)
            counts["ok" if r.stdout == b"200" else "bad"] += 1

    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.5)
    check("listening" in a.cli("listen 198.18.0.2 8080 echo"), "listen 198.18.0.2 8080 echo")
    r = a.python("import socket; s=socket.create_connection(('198.18.0.2',8080),timeout=3); s.sendall(b'hi'); print(s.recv(10).decode())")
    check(r.stdout.decode().strip() == "hi", "the new echo listener answers while http traffic runs")
    check("removed" in a.cli("unlisten 198.18.0.2 8080"), "unlisten 198.18.0.2 8080")
    r = a.run(["curl", "-s", "-m", "3", "telnet://198.18.0.2:8080"], check=False)
    check(r.returncode == 7, f"port 8080 now refuses connections (curl rc {r.returncode})")
    time.sleep(0.5)
    stop.set()
    t.join()
    check(counts["ok"] > 3 and counts["bad"] == 0, f"http traffic unaffected ({counts})")

    # ---- show flows ----------------------------------------------------
    a.cli("set msl 60000")
    for i in range(3):
        a.run(["curl", "-s", "-H", "Connection: close", "-o", "/dev/null", "http://198.18.0.2/"])
    a.wait_for(lambda: a.states()["TIME-WAIT"] == 3, what="three TIME-WAIT")
    fl = a.cli("show flows TIME-WAIT 2")
    rows = [l for l in fl.split("\n") if "TIME-WAIT" in l]
    check(len(rows) == 2 and "198.18.0.2:80" in rows[0] and "198.18.0.1:" in rows[0], "show flows TIME-WAIT 2")
    check(len([l for l in a.cli("show flows 198.18.0.1").split("\n") if "198.18.0.1:" in l]) == 3,
          "show flows filtered by address")

    # ---- telemetry -----------------------------------------------------
    tel = a.telemetry
    ts = tel("/tcpterm/states")
    check(ts["TIME_WAIT"] == 3 and ts["LISTEN"] == 1 and len(ts) == 10, f"/tcpterm/states ({ts})")
    tst = tel("/tcpterm/stats")
    check(tst["tw_entered"] >= 4 and "drop_tcp_bad_checksum" in tst, "/tcpterm/stats")
    tf = tel("/tcpterm/flows,2")
    check(len(tf) == 2 and tf[0].endswith("TIME-WAIT"), f"/tcpterm/flows,2 ({tf})")
    tc = tel("/tcpterm/config")
    check(tc["msl_ms"] == 60000 and tc["tw_cap_policy"] == "recycle-oldest", "/tcpterm/config")
    check(tel("/ethdev/list") == [0], "/ethdev/list next to ours")

    # ---- clear, stop / start -------------------------------------------
    a.cli("clear tcp stats")
    check(a.stats()["passive_opens"] == 0 and a.states()["TIME-WAIT"] == 3, "clear tcp stats keeps gauges")
    a.cli("clear port stats all")
    check(a.counters("show port stats all")["RX-packets"] < 5, "clear port stats all")
    check("stopped" in a.cli("stop"), "stop")
    check(a.states()["TIME-WAIT"] == 3, "flows kept while stopped; the CLI still answers")
    r = a.run(["curl", "-s", "-m", "1", "-o", "/dev/null", "http://198.18.0.2/"], check=False)
    check(r.returncode != 0, "no service while stopped")
    check("started" in a.cli("start"), "start")
    r = a.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://198.18.0.2/"], check=False)
    check(r.stdout == b"200", "service again after start")
    a.quit()

# ---- a pseudo-terminal: prompt, tab completion, Ctrl-D -----------------------
ns = f"ttpty{os.getpid() % 10000}"
subprocess.run(["ip", "netns", "add", ns], check=True)
try:
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("ip", ["ip", "netns", "exec", ns, BIN, "-l", "0,1", "--no-huge", "-m", "512", "--no-pci",
                         "--file-prefix", ns, "--log-level", "warn", "--vdev", f"net_tap0,iface={ns}t", "--", "-i",
                         "--listen", "198.18.0.2:80/http", "--idle-sleep-us", "50"])
    buf = b""

    seen = b""

    def read_until(pat, timeout=20):
        """True once `pat` was read; `seen` holds what came before it."""
        global buf, seen
        end = time.time() + timeout
        while pat not in buf and time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    buf += os.read(fd, 65536)
                except OSError:
                    break
        ok = pat in buf
        if ok:
            seen, buf = buf.split(pat, 1)
        return ok

    check(read_until(b"tcpterm> "), "pty: the prompt appears")
    os.write(fd, b"sho\tconf\t\r")  # tab completes "show " and "config"
    check(read_until(b"msl_ms: 30000"), "pty: tab completion runs 'show config'")
    check(read_until(b"tcpterm> "), "pty: the prompt returns")
    os.write(fd, b"show tcp st\t\t")  # ambiguous: states / stats / timewait... are listed
    time.sleep(1)
    os.write(fd, b"\r")
    check(read_until(b"tcpterm> ") and b"states" in seen and b"stats" in seen,
          "pty: a double tab lists the choices (states, stats)")
    os.write(fd, b"quit\r")
    _, status = os.waitpid(pid, 0)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "pty: quit exits 0")
finally:
    subprocess.run(["ip", "netns", "del", ns])
print("all ok")
