#!/usr/bin/python3
"""Logs IPv4 address changes of the network namespace it runs in (rtnetlink events, not polling).

usage: ip netns exec NS nlmon.py   ->  one line per event on stdout: `<unix_us> add|del ADDR/PLEN IFINDEX`
The first line is `<unix_us> ready`. Timestamps are taken when the event is read.
"""
import os
import socket
import struct
import sys
import time

RTMGRP_IPV4_IFADDR = 0x10
RTM_NEWADDR, RTM_DELADDR = 20, 21
IFA_ADDRESS, IFA_LOCAL = 1, 2


def main():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((0, RTMGRP_IPV4_IFADDR))
    out = sys.stdout
    out.write(f"{time.time_ns() // 1000} ready\n")
    out.flush()
    while True:
        data = s.recv(65536)
        us = time.time_ns() // 1000
        off = 0
        while off + 16 <= len(data):
            ln, typ, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
            if ln < 16:
                break
            if typ in (RTM_NEWADDR, RTM_DELADDR) and ln >= 24:
                fam, plen, _f, _scope, idx = struct.unpack_from("=BBBBI", data, off + 16)
                addr = None
                a = off + 24
                while a + 4 <= off + ln:
                    alen, atyp = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if fam == socket.AF_INET and atyp in (IFA_LOCAL, IFA_ADDRESS) and alen >= 8:
                        v = socket.inet_ntoa(data[a + 4 : a + 8])
                        if atyp == IFA_LOCAL or addr is None:
                            addr = v
                    a += (alen + 3) & ~3
                if addr:
                    op = "add" if typ == RTM_NEWADDR else "del"
                    out.write(f"{us} {op} {addr}/{plen} {idx}\n")
            off += (ln + 3) & ~3
        out.flush()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        os._exit(0)
