"""End-to-end harness: a network namespace with tcpterm on a TAP and the
Linux kernel as the peer.  Each test makes its own namespace (unique name,
198.18.0.0/24 inside it only) and removes it, whatever happens.

    with Appliance(listen=["198.18.0.2:80/http"], msl_ms=2000) as a:
        a.run(["curl", "-s", "http://198.18.0.2/"])
        states = a.states()
"""
import os
import re
import select
import signal
import subprocess
import sys
import time

# A test stopped by SIGTERM (scripts/test.sh's `timeout`, a CI runner)
# unwinds like one that failed: its namespace, processes and EAL runtime
# directory are removed by the blocks' exits, not left behind.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TCPTERM_BIN", os.path.join(TOP, "build", "app", "tcpterm"))
PROMPT = b"tcpterm> "
KERNEL_IP, APPLIANCE_IP = "198.18.0.1", "198.18.0.2"
# IPv6 (ipv6=True): the benchmarking range 2001:2::/48 (RFC 5180).
KERNEL_IP6, APPLIANCE_IP6 = "2001:2::1", "2001:2::2"
COUNTER = re.compile(r"^\s*([A-Za-z0-9_ -]+):\s+(-?\d+)\s*$")


def sh(cmd, check=True, **kw):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd}: rc={r.returncode} {r.stderr.strip()}")
    return r


def reach(ns, addr, v6=False):
    """Pings addr from namespace ns until the kernel holds its link-layer
    address (the first packet triggers ARP or neighbour discovery)."""
    fam = "-6 " if v6 else ""
    for _ in range(50):
        if "lladdr" in sh(f"ip netns exec {ns} ip {fam}neigh show {addr}", check=False).stdout:
            return
        sh(f"ip netns exec {ns} ping {fam}-c1 -W1 {addr}", check=False)


class Appliance:
    def __init__(self, listen, msl_ms=None, extra=(), name=None, capture=False, hugepages=False,
                 ipv6=False, workers=1):
        self.ns = name or f"tt{os.getpid() % 100000}"
        self.tap = f"{self.ns}t"[:15]
        self.listen = listen
        self.msl_ms = msl_ms
        self.extra = list(extra)
        self.capture = capture
        self.mem = ["-m", "256"] if hugepages else ["--no-huge", "-m", "1024"]
        self.proc = None
        self.pcap = None
        self.tshark = None
        self.exit_output = b""
        self.ipv6 = ipv6
        # One worker lcore per queue of the TAP, alternating between the two
        # CPUs of the test machine (lcore 0, the CLI's, shares CPU 0).
        self.lcores = ["-l", "0,1"] if workers == 1 else \
            ["--lcores", ",".join(["0@0"] + [f"{i}@{i % 2}" for i in range(1, workers + 1)])]

    # ---------------------------------------------------------- lifecycle --
    def __enter__(self):
        sh(f"ip netns del {self.ns}", check=False)
        sh(f"ip netns add {self.ns}")
        sh(f"ip netns exec {self.ns} ip link set lo up")
        args = ["ip", "netns", "exec", self.ns, BIN] + self.lcores + self.mem + [
                "--no-pci", "--file-prefix", self.ns, "--log-level", "warn",
                "--vdev", f"net_tap0,iface={self.tap}", "--", "-i", "--idle-sleep-us", "20"]
        for l in self.listen:
            args += ["--listen", l]
        if self.msl_ms:
            args += ["--msl-ms", str(self.msl_ms)]
        if self.ipv6:
            args += ["--addr", f"{APPLIANCE_IP}/24", "--addr", f"{APPLIANCE_IP6}/64"]
        args += self.extra
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.buf = b""
        self._read_until_prompt(timeout=30)
        sh(f"ip netns exec {self.ns} ip addr add {KERNEL_IP}/24 dev {self.tap}")
        if self.ipv6:
            # No duplicate address detection: the address is usable at once.
            sh(f"ip netns exec {self.ns} sysctl -qw net.ipv6.conf.{self.tap}.accept_dad=0")
            sh(f"ip netns exec {self.ns} ip -6 addr add {KERNEL_IP6}/64 dev {self.tap} nodad")
        sh(f"ip netns exec {self.ns} ip link set {self.tap} up")
        if self.capture:
            self.pcap = f"/tmp/{self.ns}.pcap"
            self.tshark = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "tcpdump", "-i", self.tap, "-w", self.pcap,
                 "-U", "-s", "0", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        # The first packet triggers ARP; make sure the path works.
        reach(self.ns, APPLIANCE_IP)
        if self.ipv6:
            reach(self.ns, APPLIANCE_IP6, v6=True)
        return self

    def __exit__(self, *exc):
        try:
            if self.tshark:
                time.sleep(0.5)
                self.tshark.send_signal(signal.SIGINT)
                self.tshark.wait(timeout=10)
            if self.proc and self.proc.poll() is None:
                self.quit()
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
            sh(f"ip netns del {self.ns}", check=False)
            # tcpterm removes its runtime directory when it exits cleanly;
            # after a kill it is the harness's to remove.
            sh(f"rm -rf /var/run/dpdk/{self.ns}", check=False)
            # The capture outlives the block for the test to read (and
            # remove); after a failure inside it, nothing reads it.
            if exc[0] is not None and self.pcap and os.path.exists(self.pcap):
                os.unlink(self.pcap)
        return False

    def quit(self):
        """quit: exits 0 and every mbuf is back in its pool."""
        self.proc.stdin.write(b"quit\n")
        self.proc.stdin.flush()
        out, _ = self.proc.communicate(timeout=30)
        self.exit_output = self.buf + out
        text = self.exit_output.decode(errors="replace")
        m = re.search(r"mbufs: (\d+)/(\d+) back", text)
        assert self.proc.returncode == 0, f"tcpterm exited {self.proc.returncode}: {text[-2000:]}"
        assert m and m.group(1) == m.group(2), f"mbufs not all returned: {text[-500:]}"
        return text

    # ---------------------------------------------------------------- CLI --
    def _read_until_prompt(self, timeout=10):
        end = time.time() + timeout
        while PROMPT not in self.buf:
            left = end - time.time()
            if left <= 0:
                raise TimeoutError(f"no prompt; got {self.buf[-500:]!r}")
            if self.proc.poll() is not None:
                rest = self.proc.stdout.read() or b""
                raise RuntimeError(f"tcpterm exited {self.proc.returncode}: {(self.buf + rest)[-2000:]!r}")
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.5))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    continue
                self.buf += chunk
        out, self.buf = self.buf.split(PROMPT, 1)
        return out.decode(errors="replace")

    def cli(self, cmd, timeout=10):
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        out = self._read_until_prompt(timeout)
        lines = out.replace("\r", "").split("\n")
        if lines and lines[0].strip() == cmd.strip():
            lines = lines[1:]  # the echoed command
        return "\n".join(lines)

    def counters(self, cmd):
        d = {}
        for line in self.cli(cmd).split("\n"):
            m = COUNTER.match(line)
            if m:
                d[m.group(1).strip()] = int(m.group(2))
        return d

    def states(self):
        return self.counters("show tcp states")

    def stats(self):
        return self.counters("show tcp stats")

    def telemetry(self, cmd):
        """One DPDK telemetry command (dpdk-telemetry.py), its JSON value."""
        import json
        r = subprocess.run(["dpdk-telemetry.py", "-f", self.ns], input=cmd + "\n", capture_output=True,
                           text=True, timeout=20)
        for line in r.stdout.splitlines():
            line = line.strip().lstrip("-> ").strip()
            if line.startswith("{") and cmd.split(",")[0] in line:
                return json.loads(line)[cmd.split(",")[0]]
        raise AssertionError(f"no telemetry answer for {cmd}: {r.stdout[-500:]} {r.stderr[-500:]}")

    # -------------------------------------------------------------- peers --
    def run(self, cmd, timeout=120, check=True):
        if isinstance(cmd, str):
            cmd = ["bash", "-c", cmd]
        r = subprocess.run(["ip", "netns", "exec", self.ns] + cmd, capture_output=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{cmd}: rc={r.returncode}: {r.stderr.decode()[-1000:]}")
        return r

    def python(self, code, timeout=300):
        """Runs Python code as a peer inside the namespace."""
        return self.run(["/usr/bin/python3", "-c", code], timeout=timeout)

    def wait_for(self, pred, timeout=30, every=0.2, what="condition"):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            last = pred()
            if last:
                return last
            time.sleep(every)
        raise AssertionError(f"timed out waiting for {what} (last: {last})")


class Daemons:
    """Processes a test starts inside a namespace (BIRD 2 speakers and
    routers, health-route.sh watchers, backends, clients), each stopped on
    leaving the block whatever happens (SIGTERM, then SIGKILL), their files
    in a temporary directory removed; the watchers' logs are printed.

        with Daemons(ns) as d:
            r = d.bird("router", conf)       # bird -p first: r.returncode
            d.birdc("router", "show route")
            d.watch("speaker", url)          # enable/disable vip on the speaker
    """

    def __init__(self, ns):
        import tempfile
        self.ns = ns
        self.tmp = tempfile.mkdtemp(prefix="tt-daemons-")
        self.procs = []
        self.socks = {}
        self.logs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for name, path in self.logs:  # what each watcher saw, for the test's log
            with open(path) as f:
                print(f"{name}:", f.read().replace("BIRD 2.0.12 ready.\n", "").strip())
        sh(f"rm -rf {self.tmp}", check=False)
        return False

    def spawn(self, args, **kw):
        """args run inside the namespace; kept, and stopped at the end."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns] + list(args), **kw)
        self.procs.append(p)
        return p

    def bird(self, name, conf):
        """Checks conf with bird -p and, if it passes, starts a BIRD named
        name on it; returns bird -p's result."""
        path = f"{self.tmp}/{name}.conf"
        with open(path, "w") as f:
            f.write(conf)
        r = sh(["bird", "-p", "-c", path], check=False)
        if r.returncode == 0:
            self.socks[name] = f"{self.tmp}/{name}.ctl"
            self.spawn(["bird", "-f", "-c", path, "-s", self.socks[name], "-P", f"{self.tmp}/{name}.pid"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r

    def birdc(self, name, cmd):
        r = subprocess.run(["ip", "netns", "exec", self.ns, "birdc", "-s", self.socks[name]] + cmd.split(),
                           capture_output=True, text=True, timeout=30)
        return r.stdout

    def watch(self, speaker, url, up=None, down=None, interval="0.5", rise="2", fall="2"):
        """scripts/health-route.sh on url, running up and down (default:
        enabling and disabling the static protocol `vip` of BIRD
        `speaker`); returns its log's path."""
        log = f"{self.tmp}/watch-{speaker}.log"
        if up is None:
            up, down = (f"birdc -s {self.socks[speaker]} {w} vip" for w in ("enable", "disable"))
        with open(log, "w") as f:
            self.spawn([os.path.join(TOP, "scripts", "health-route.sh"), "--url", url, "--interval", interval,
                        "--rise", rise, "--fall", fall, "--up", up, "--down", down],
                       stdout=f, stderr=subprocess.STDOUT)
        self.logs.append((f"watcher of {speaker}", log))
        return log


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}")
        sys.exit(1)
    print(f"ok: {msg}")
