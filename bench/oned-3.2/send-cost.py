#!/usr/bin/env python3
"""What sending a fixed answer costs the server, by two kernel paths: `sendall` (the answer is
copied into the socket, as stratusd's writev does) or `sendfile` from a memfd (the socket takes
page references). A bare threaded HTTP/1.1 keep-alive server, one thread per connection, no
XML-RPC work; measured with bench/same-day.py --url like any server (analysis for
docs/performance.md, section "vmpool.info side by side with a real oned 3.2").

  bench/oned-3.2/send-cost.py sendall|sendfile PORT ANSWER_FILE
"""
import os
import socket
import sys
import threading

mode, port, answer_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode not in ("sendall", "sendfile"):
    raise SystemExit(__doc__)
with open(answer_file, "rb") as f:
    body = f.read()
head = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body)
memfd = os.memfd_create("answer")
os.write(memfd, body)


def serve(conn):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            header, _, rest = buf.partition(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(rest) < length:
                data = conn.recv(65536)
                if not data:
                    return
                rest += data
            buf = rest[length:]
            if mode == "sendall":
                conn.sendall(head + body)
            else:
                conn.sendall(head)
                offset = 0
                while offset < len(body):
                    offset += os.sendfile(conn.fileno(), memfd, offset, len(body) - offset)
    except (ConnectionResetError, BrokenPipeError):
        return
    finally:
        conn.close()


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(64)
while True:
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
