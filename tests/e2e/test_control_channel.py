#!/usr/bin/python3
"""A control channel that cannot corrupt memory (issue 9, item 5).

Telemetry clients query /tcpterm/stats and /tcpterm/flows in a loop while the
CLI stops and starts the workers and makes them stall past the query
time-out (debug stall).  Every CLI answer is the answer to its own question
(a show tcp states after a timed-out query is not the stale reply of that
query), the appliance stays up, and it exits 0 with every mbuf back.  The
suite also runs this test against the AddressSanitizer build, where the old
code's use-after-free (a freed request executed after a stop) is caught."""
import subprocess
import threading
import time

from harness import Appliance, check

with Appliance(listen=["198.18.0.2:80/http"]) as a:
    stop = threading.Event()
    answers = [0]

    def hammer():
        while not stop.is_set():
            r = subprocess.run(["dpdk-telemetry.py", "-f", a.ns], input="/tcpterm/stats\n/tcpterm/flows,5\n",
                               capture_output=True, text=True, timeout=30)
            if "tcpterm" in r.stdout or "passive_opens" in r.stdout:
                answers[0] += 1

    ts = [threading.Thread(target=hammer) for _ in range(2)]
    for t in ts:
        t.start()
    try:
        bad = 0
        for i in range(12):
            out = a.cli("debug stall 400", timeout=15)
            check("did not answer" in out, f"round {i}: a stalled worker times the query out")
            s = a.cli("show tcp states", timeout=15)
            if "LISTEN: 1" not in s or "TIME-WAIT:" not in s:
                bad += 1
            st = a.counters("show tcp stats")
            if "passive_opens" not in st:
                bad += 1
            a.cli("stop", timeout=15)
            s2 = a.cli("show tcp states", timeout=15)  # answered by the main lcore
            if "LISTEN: 1" not in s2:
                bad += 1
            a.cli("start", timeout=15)
        check(bad == 0, "every answer after a time-out or a stop was the right one")
        # The stall happened inside one poll: show lcores says how long the
        # lcore's packets waited behind it; clear tcp stats starts it over.
        lp = int(a.counters("show lcores")["longest_poll_us"])
        check(lp >= 350000, f"show lcores: longest_poll_us holds the 400 ms stall ({lp})")
        a.cli("clear tcp stats")
        lp2 = int(a.counters("show lcores")["longest_poll_us"])
        check(lp2 < 350000, f"clear tcp stats resets it ({lp2})")
        a.run(["curl", "-s", "-m", "5", "http://198.18.0.2/"])
        check(a.states()["LISTEN"] == 1, "the appliance still serves and answers")
    finally:
        stop.set()
        for t in ts:
            t.join()
    check(answers[0] > 0, f"telemetry answered during the test ({answers[0]} rounds)")
    a.quit()
print("all ok")
