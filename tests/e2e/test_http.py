#!/usr/bin/python3
"""curl against http: keep-alive, Connection: close, HTTP/1.0, HTTP/1.1, a
malformed request gets 400; who closes first decides who holds TIME-WAIT."""
import sys
import time
from harness import Appliance, check

with Appliance(listen=["198.18.0.2:80/http,body=1000"], msl_ms=60000) as a:
    # Keep-alive: three requests on one connection (curl reuses it).
    r = a.run(["curl", "-sS", "-m", "5", "-w", "%{http_code} %{size_download} %{num_connects}\\n"]
              + ["-o", "/dev/null"] * 3 + ["http://198.18.0.2/a", "http://198.18.0.2/b", "http://198.18.0.2/c"])
    lines = r.stdout.decode().split()
    check(lines == ["200", "1000", "1", "200", "1000", "0", "200", "1000", "0"],
          f"HTTP/1.1 keep-alive: 3 responses on one connection ({lines})")
    s = a.states()
    check(s["TIME-WAIT"] == 0, "the client closed first: no TIME-WAIT on the appliance")

    # Connection: close: the appliance closes first and holds TIME-WAIT.
    r = a.run(["curl", "-sS", "-m", "5", "-H", "Connection: close", "-o", "/dev/null", "-w", "%{http_code}",
               "http://198.18.0.2/close"])
    check(r.stdout.decode() == "200", "Connection: close gets 200")
    a.wait_for(lambda: a.states()["TIME-WAIT"] == 1, what="one TIME-WAIT")
    check(True, "appliance closed first: TIME-WAIT 1")

    # HTTP/1.0: the appliance closes first too.
    r = a.run(["curl", "-sS", "-0", "-m", "5", "-D", "-", "-o", "/dev/null", "http://198.18.0.2/ten"])
    head = r.stdout.decode()
    check("200 OK" in head and "Connection: close" in head, "HTTP/1.0 gets 200 and Connection: close")
    a.wait_for(lambda: a.states()["TIME-WAIT"] == 2, what="two TIME-WAIT")

    # HEAD has headers only.
    r = a.run(["curl", "-sS", "-I", "-m", "5", "http://198.18.0.2/"])
    check("Content-Length: 1000" in r.stdout.decode(), "HEAD: Content-Length, no body")

    # A malformed request gets 400 and a close.
    r = a.python("""
import socket
s = socket.create_connection(("198.18.0.2", 80), timeout=5)
s.sendall(b"THIS IS NOT HTTP\\r\\n\\r\\n")
data = b""
while True:
    c = s.recv(4096)
    if not c: break
    data += c
print(data.split(b"\\r\\n")[0].decode())
""")
    check(r.stdout.decode().strip() == "HTTP/1.1 400 Bad Request", "malformed request gets 400 and EOF")

    # A POST body is read and dropped; the next request on the connection works.
    r = a.run(["curl", "-sS", "-m", "5", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ", "-d", "x" * 5000,
               "http://198.18.0.2/post", "http://198.18.0.2/after"])
    check(r.stdout.decode().split() == ["200", "200"], "POST with a body, then another request")

    st = a.stats()
    check(st["passive_opens"] >= 6, f"passive opens counted ({st['passive_opens']})")
    check(st["closed_passive"] >= 2, "keep-alive connections closed passively (LAST-ACK)")
    a.quit()

# close=always / close=never: who closes first is the user's choice.
with Appliance(listen=["198.18.0.2:80/http,close=always", "198.18.0.2:81/http,close=never"], msl_ms=60000) as a:
    r = a.run(["curl", "-sS", "-m", "5", "-D", "-", "-o", "/dev/null", "http://198.18.0.2/"])
    check("Connection: close" in r.stdout.decode(), "close=always: a keep-alive request gets Connection: close")
    a.wait_for(lambda: a.states()["TIME-WAIT"] == 1, what="the appliance's TIME-WAIT (it closed first)")
    check(True, "close=always: the appliance closed first (TIME-WAIT 1 after one curl)")
    r = a.run(["curl", "-sS", "-0", "-m", "5", "-D", "-", "-o", "/dev/null", "-H", "Connection: close",
               "http://198.18.0.2:81/"])
    check("200 OK" in r.stdout.decode() and "Connection: close" not in r.stdout.decode(),
          "close=never: even HTTP/1.0 with Connection: close gets a keep-alive answer")
    time.sleep(0.5)
    st = a.stats()
    check(a.states()["TIME-WAIT"] == 1 and st["closed_passive"] >= 1,
          "close=never: the client closed first (no new TIME-WAIT here)")
    a.quit()
print("all ok")
