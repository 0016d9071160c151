#!/usr/bin/python3
"""A minimal syslog receiver for the benchmark nodes: each node's /dev/log is one of our sockets.

usage: syslogd.py OUTFILE SOCKET=NODE [SOCKET=NODE...]
Writes `<unix_us> <node> <message>` per datagram, stamped on receipt (all three tools log
through syslog(3), so their events get the same clock and the same latency).
"""
import os
import select
import socket
import sys
import time


def main():
    out = open(sys.argv[1], "a", buffering=1)
    socks = {}
    for spec in sys.argv[2:]:
        path, node = spec.rsplit("=", 1)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(path)
        os.chmod(path, 0o666)
        socks[s.fileno()] = (s, node)
    out.write(f"{time.time_ns() // 1000} - ready\n")
    p = select.poll()
    for fd in socks:
        p.register(fd, select.POLLIN)
    while True:
        for fd, _ev in p.poll():
            s, node = socks[fd]
            try:
                msg = s.recv(8192)
            except BlockingIOError:
                continue
            us = time.time_ns() // 1000
            text = msg.decode("utf-8", "replace").replace("\n", " ").rstrip("\x00 ")
            out.write(f"{us} {node} {text}\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
