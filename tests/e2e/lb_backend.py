#!/usr/bin/python3
"""A Linux backend for the proxy tests, run inside the test namespace:
   lb_backend.py ADDR LOGFILE
serves on ADDR (threads, one per connection):
  8080  HTTP/1.0: 200 with "backend ADDR" (and /health), then close
  7     echo until EOF, then close (half-close aware)
  7100  PROXY protocol: parses a v1 or v2 header, answers one line
        "v<ver> SRC SPORT DST DPORT", then echoes
  7200  whoami echo: sends "ADDR\\n", then echoes
  9000  slow reader: 64 KiB every 100 ms
  9001  accepts and never reads nor answers
  9002  reads a few bytes, then resets (SO_LINGER 0)
Events (resets seen, bad headers) are appended to LOGFILE."""
import socket
import struct
import sys
import threading
import time

ADDR, LOG = sys.argv[1], sys.argv[2]
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def log(msg):
    with open(LOG, "a") as f:
        f.write(f"{ADDR} {msg}\n")


def parse_proxy(buf):
    """(length, version, src, sport, dst, dport) or None if incomplete;
    raises ValueError if malformed (HAProxy proxy-protocol.txt)."""
    if buf[:1] == SIG[:1]:
        if len(buf) < 16:
            return None
        if buf[:12] != SIG or buf[12] >> 4 != 2:
            raise ValueError("bad v2 signature or version")
        fam, ln = buf[13], struct.unpack("!H", buf[14:16])[0]
        if len(buf) < 16 + ln:
            return None
        if buf[12] & 0xF != 1 or fam not in (0x11, 0x21) or ln < (12 if fam == 0x11 else 36):
            raise ValueError("not PROXY TCP4 or TCP6")
        if fam == 0x21:
            s, d, sp, dp = struct.unpack("!16s16sHH", buf[16:52])
            return 16 + ln, 2, socket.inet_ntop(socket.AF_INET6, s), sp, socket.inet_ntop(socket.AF_INET6, d), dp
        s, d, sp, dp = struct.unpack("!4s4sHH", buf[16:28])
        return 16 + ln, 2, socket.inet_ntoa(s), sp, socket.inet_ntoa(d), dp
    end = buf.find(b"\r\n")
    if end < 0:
        if len(buf) >= 107 or not b"PROXY "[:len(buf)] == buf[:6]:
            raise ValueError("no v1 line")
        return None
    f = buf[:end].decode().split(" ")
    if len(f) != 6 or f[0] != "PROXY" or f[1] not in ("TCP4", "TCP6"):
        raise ValueError("bad v1 line")
    for p in f[4:]:
        if p != str(int(p)) or not 0 <= int(p) <= 65535:
            raise ValueError("bad v1 port")
    fam = socket.AF_INET6 if f[1] == "TCP6" else socket.AF_INET
    # Each address in its family's text form, as RFC 5952 writes it for IPv6.
    for a in f[2:4]:
        if socket.inet_ntop(fam, socket.inet_pton(fam, a)) != a:
            raise ValueError("bad v1 address")
    return end + 2, 1, f[2], int(f[4]), f[3], int(f[5])


# The specification's own examples, checked before serving.
assert parse_proxy(b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n")[0] == 56
assert parse_proxy(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /")[1:] == \
    (1, "192.168.0.1", 56324, "192.168.0.11", 443)
assert parse_proxy(SIG + b"\x21\x11\x00\x0c" + socket.inet_aton("1.2.3.4") + socket.inet_aton("5.6.7.8") +
                   struct.pack("!HH", 1000, 80))[1:] == (2, "1.2.3.4", 1000, "5.6.7.8", 80)


def echo(c, first=b""):
    if first:
        c.sendall(first)
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR)


def handle(c, port):
    try:
        if port == 8080:
            req = b""
            while b"\r\n\r\n" not in req:
                d = c.recv(4096)
                if not d:
                    return
                req += d
            body = f"backend {ADDR}\n".encode()
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        elif port == 7:
            echo(c)
        elif port == 7200:
            echo(c, f"{ADDR}\n".encode())
        elif port == 7100:
            buf = b""
            while True:
                r = parse_proxy(buf)
                if r:
                    break
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            n, v, s, sp, d, dp = r
            c.sendall(f"v{v} {s} {sp} {d} {dp}\n".encode() + buf[n:])
            echo(c)
        elif port == 9000:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                time.sleep(0.1)
        elif port == 9001:
            time.sleep(3600)
        elif port == 9002:
            c.recv(16)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except ConnectionResetError:
        log(f"reset {port}")
    except OSError:
        pass  # a health check that closed at once, a client that vanished
    except ValueError as e:
        log(f"bad header: {e}")
    finally:
        c.close()


def serve(port):
    s = socket.socket(socket.AF_INET6 if ":" in ADDR else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ADDR, port))
    s.listen(512)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, port), daemon=True).start()


for p in (8080, 7, 7100, 7200, 9000, 9001, 9002):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
log("ready")
while True:
    time.sleep(3600)
