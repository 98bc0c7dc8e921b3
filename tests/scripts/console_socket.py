#!/usr/bin/python3
"""console_socket.py PATH INPUT SECONDS [ROWS COLS INPUT2]: stands in for a container
client's console socket.

Listens on unix socket PATH, prints "listening" once it does, takes the terminal master a
runtime sends there (SCM_RIGHTS), writes INPUT to it (with \\n turned into carriage
returns, as a terminal's keyboard sends), and copies everything the terminal prints to
stdout until it closes or SECONDS pass. With ROWS COLS INPUT2, half a second after INPUT it
resizes the terminal (as `docker run -it` does when its window changes), then types INPUT2.
"""
import fcntl
import struct
import termios
import os
import select
import socket
import sys
import time

path, keys, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
resize = sys.argv[4:7]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
print("listening", flush=True)
conn, _ = server.accept()
_, fds, _, _ = socket.recv_fds(conn, 4096, 1)
master = fds[0]
os.write(master, keys.replace("\n", "\r").encode())
deadline = time.time() + limit
resize_at = time.time() + 0.5 if resize else None
out = b""
while time.time() < deadline:
    if resize_at is not None and time.time() >= resize_at:
        rows, cols, keys2 = int(resize[0]), int(resize[1]), resize[2]
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        time.sleep(0.2)
        os.write(master, keys2.replace("\n", "\r").encode())
        resize_at = None
    ready, _, _ = select.select([master], [], [], 0.1)
    if not ready:
        continue
    try:
        data = os.read(master, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
sys.stdout.write(out.decode(errors="replace"))
