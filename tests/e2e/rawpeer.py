"""Raw TCP peers for e2e tests: Ethernet frames written and read with an
AF_PACKET socket on the namespace's side of the TAP, from source addresses
the kernel does not own (so it neither answers nor resets them) and, where
a test says so, from a MAC that stands for a router.  Plain struct packing:
thousands of segments a second, which scapy cannot do."""
import select
import socket
import struct
import time

ETH_P_ALL = 3


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_aton(a):
    return socket.inet_aton(a)


def mac_aton(m):
    return bytes(int(x, 16) for x in m.split(":"))


class Seg:
    __slots__ = ("src", "dst", "sport", "dport", "seq", "ack", "flags", "win", "data", "dmac", "smac")


def build(smac, dmac, src, dst, sport, dport, seq, ack, flags, data=b"", win=65535, mss=None):
    opts = b""
    if mss:
        opts = struct.pack("!BBH", 2, 4, mss)
    off = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off << 4, flags, win, 0, 0) + opts + data
    ph = ip_aton(src) + ip_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    c = csum(ph + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, ip_aton(src), ip_aton(dst))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    return dmac + smac + b"\x08\x00" + iph + tcp


def parse(frame):
    """A TCP/IPv4 frame as a Seg, or None."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 0xF) * 4
    t = 14 + ihl
    s = Seg()
    s.dmac, s.smac = frame[0:6], frame[6:12]
    s.src, s.dst = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])
    s.sport, s.dport, s.seq, s.ack, offf, s.flags, s.win = struct.unpack("!HHIIBBH", frame[t:t + 16])
    total = struct.unpack("!H", frame[16:18])[0]
    s.data = frame[t + (offf >> 4) * 4:14 + total]
    return s


SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


class Wire:
    """One AF_PACKET socket on IFACE (run inside the namespace)."""

    def __init__(self, iface):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        # SO_RCVBUFFORCE (root): past rmem_max, so that a peer slowed down by
        # a busy machine does not lose frames the test counts.
        self.s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 64 << 20)
        self.s.bind((iface, 0))

    def send(self, frame):
        self.s.send(frame)

    def send_paced(self, frames, every=100, pause=0.01):
        """Sends frames with a pause every `every` of them: the TAP queue holds
        1 000 frames, and on a busy machine tcpterm may not poll it for a
        while; a raw peer has no retransmission of its own."""
        for k, f in enumerate(frames):
            if f is None:
                continue
            self.s.send(f)
            if k % every == every - 1:
                time.sleep(pause)

    def recv_all(self, seconds, want=None):
        """Frames received (parsed TCP only) for up to `seconds`, or until
        want(new_frames) returns true; want sees each frame once (it keeps
        its own tally), so a slow peer does not rescan what it has seen."""
        got = []
        seen = 0
        end = time.time() + seconds
        while time.time() < end:
            r, _, _ = select.select([self.s], [], [], 0.05)
            if r:
                while True:
                    try:
                        f = self.s.recv(65535, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    seg = parse(f)
                    if seg is not None:
                        got.append(seg)
            if want:
                fresh, seen = got[seen:], len(got)
                if want(fresh):
                    break
        return got
