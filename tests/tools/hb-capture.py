#!/usr/bin/env python3
"""hb-capture.py: record the wire traffic of two real heartbeat 3.0.6 nodes (Debian's package).

usage (as root):  tests/tools/hb-capture.py OUTDIR [SCENARIO ...]      (default: every scenario)
                  tests/tools/hb-capture.py --list

Each node is a namespaced "machine" (own netns + mount/UTS/PID namespaces, started by
hb-node-init.sh) with its own /etc/ha.d, /var/lib/heartbeat and /run. hn1 = 192.0.2.1/24 and
hn2 = 192.0.2.2/24 hang off a bridge br0 in a third netns; the VIP is 192.0.2.50. Nothing is
attached to the host's network. UDP is recorded on br0 (in promiscuous mode, with an AF_PACKET
socket in the bridge namespace); a serial line is a pair of ptys joined by a relay in this
script that logs every read.

Output per scenario NAME (in OUTDIR):
  NAME.messages.jsonl   one JSON object per heartbeat message: i, t (epoch s), dir, src, dst,
                        framing, type, raw_hex (the exact UDP payload or serial frame),
                        fields [[type, name, value]] (binary values as hex)
  NAME-events.txt       the rig's actions, "epoch-seconds action"
  NAME.bytes.jsonl      serial scenarios only: {"t","dir","hex"} per relay read
  configs/NAME/hn{1,2}/ ha.cf, haresources, authkeys and the node's ha-log
Only the Python standard library is used.
"""
import json, os, shutil, signal, socket, struct, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_INIT = os.path.join(HERE, "hb-node-init.sh")
HB = "/usr/libexec/heartbeat/heartbeat"
KEY = "tandemfixturekey"
IP = {"hn1": "192.0.2.1", "hn2": "192.0.2.2"}
VIP = "192.0.2.50"
MCAST = "239.192.0.43"
TAG = "%d" % (os.getpid() % 100000)


def sh(args, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s%s" % (args, r.stdout, r.stderr))
    return r


def wait_for(f, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = f()
        if v:
            return v
        time.sleep(0.1)
    raise RuntimeError("timeout waiting for " + what)


# ------------------------------------------------------------------ scenarios
# Each step: (seconds to wait before it, action, argument). Actions:
#   start N | stop N (heartbeat -k, waits until its processes are gone) | kill N (SIGKILL the
#   machine) | standby N | takeover N | vip N (wait until N holds the VIP) | drop on|off
#   (nftables in hn2: drop every 4th UDP datagram from hn1) | sleep
BASIC = [(0, "start", "hn1"), (0, "start", "hn2"), (0, "vip", "hn1"), (3, "standby", "hn1"),
         (0, "vip", "hn2"), (4, "takeover", "hn1"), (0, "vip", "hn1"), (3, "stop", "hn1"),
         (0, "vip", "hn2"), (3, "stop", "hn2")]
SCENARIOS = {
    "udp-md5": dict(auth="md5", media="ucast", steps=BASIC),
    "udp-crc": dict(auth="crc", media="ucast", steps=BASIC),
    "udp-sha1-msgfmt-netstring": dict(auth="sha1", media="ucast", msgfmt="netstring", steps=BASIC),
    "bcast-sha1": dict(auth="sha1", media="bcast", steps=BASIC),
    "mcast-sha1": dict(auth="sha1", media="mcast", steps=BASIC),
    "udp-sha1-rexmit": dict(auth="sha1", media="ucast", steps=[
        (0, "start", "hn1"), (0, "start", "hn2"), (0, "vip", "hn1"), (2, "drop", "on"), (12, "drop", "off"),
        (4, "stop", "hn2"), (2, "stop", "hn1")]),
    # hn1 alone first (initdead passes, it takes everything), hn2 joins later, then hn1 dies
    # without a word (kill -9 of the whole machine) and hn2 takes over; auto_failback on.
    "udp-sha1-join-death": dict(auth="sha1", media="ucast", steps=[
        (0, "start", "hn1"), (0, "vip", "hn1"), (3, "start", "hn2"), (16, "sleep", ""), (0, "kill", "hn1"),
        (0, "vip", "hn2"), (3, "stop", "hn2")]),
    # hn2 alone first, so it holds hn1's group too; hn1 joins: auto_failback on gives it back.
    "udp-sha1-failback": dict(auth="sha1", media="ucast", steps=[
        (0, "start", "hn2"), (0, "vip", "hn2"), (3, "start", "hn1"), (0, "vip", "hn1"), (5, "stop", "hn2"),
        (2, "stop", "hn1")]),
    "udp-sha1-failback-off": dict(auth="sha1", media="ucast", failback="off", steps=[
        (0, "start", "hn2"), (0, "vip", "hn2"), (3, "start", "hn1"), (20, "sleep", ""), (0, "stop", "hn2"),
        (0, "vip", "hn1"), (3, "stop", "hn1")]),
    "udp-sha1-legacy": dict(auth="sha1", media="ucast", failback="legacy", steps=[
        (0, "start", "hn2"), (0, "vip", "hn2"), (3, "start", "hn1"), (0, "vip", "hn1"), (5, "stop", "hn1"),
        (0, "vip", "hn2"), (3, "stop", "hn2")]),
    "serial-crc": dict(auth="crc", media="serial", steps=BASIC),
}


# ------------------------------------------------------------------ decoding (fields only)
def b64decode(s):
    import base64
    return base64.b64decode(s, validate=True)


def parse_netstring(buf):
    assert buf.startswith(b"###\n"), buf[:8]
    p, fields = 4, []
    while buf[p:p + 4] != b"%%%\n":
        c = buf.index(b":", p)
        n = int(buf[p:c])
        body = buf[c + 1:c + 1 + n]
        assert buf[c + 1 + n:c + 2 + n] == b","
        p = c + 2 + n
        t = body[1] - 0x30
        eq = body.index(b"=", 3)
        fields.append((t, body[3:eq].decode(), body[eq + 1:]))
    return fields


def parse_classic(buf):
    lines = buf.split(b"\n")
    assert lines[0] == b">>>" and lines[-2] == b"<<<" and lines[-1] == b"", buf[:40]
    fields = []
    for ln in lines[1:-2]:
        t = 0
        if ln[:1] == b"(":
            t, ln = ln[1] - 0x30, ln[3:]
        name, _, val = ln.partition(b"=")
        if t == 0:
            val = val.replace(bytes([19]), b"\n")
        elif t == 1:
            val = b64decode(val)
        fields.append((t, name.decode(), val))
    return fields


def message_record(i, t, direction, src, dst, payload):
    framing = "netstring" if payload.startswith(b"###\n") else "classic"
    fields = parse_netstring(payload) if framing == "netstring" else parse_classic(payload)
    mtype = next((v.decode("latin-1") for ft, n, v in fields if n == "t"), "?")
    return {"i": i, "t": t, "dir": direction, "src": src, "dst": dst, "framing": framing, "type": mtype,
            "raw_hex": payload.hex(),
            "fields": [[ft, n, v.hex() if ft == 1 else v.decode("latin-1")] for ft, n, v in fields]}


# ------------------------------------------------------------------ sniffer (runs in the bridge netns)
def sniff(iface, out_path, stop_path):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((iface, 0))
    s.settimeout(0.2)
    with open(out_path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        while not os.path.exists(stop_path):
            try:
                pkt = s.recv(65535)
            except socket.timeout:
                continue
            t = time.time()
            if len(pkt) < 42 or pkt[12:14] != b"\x08\x00" or pkt[23] != 17:
                continue
            ihl = (pkt[14] & 15) * 4
            sport, dport = struct.unpack("!HH", pkt[14 + ihl:18 + ihl])
            if 694 not in (sport, dport):
                continue
            f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(pkt), len(pkt)) + pkt)
            f.flush()


def read_pcap(path):
    data = open(path, "rb").read()
    off = 24
    while off + 16 <= len(data):
        ts, us, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ihl = (pkt[14] & 15) * 4
        ip = pkt[14:]
        src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
        sport, dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
        yield ts + us / 1e6, src, sport, dst, dport, ip[ihl + 8:ihl + ulen]


# ------------------------------------------------------------------ serial relay
class PtyRelay:
    def __init__(self, dirpath, log_path):
        import tty
        self.ma, sa = os.openpty()
        self.mb, sb = os.openpty()
        for fd in (sa, sb, self.ma, self.mb):
            tty.setraw(fd)
        self.paths = {"hn1": os.path.join(dirpath, "ttyA"), "hn2": os.path.join(dirpath, "ttyB")}
        os.symlink(os.ttyname(sa), self.paths["hn1"])
        os.symlink(os.ttyname(sb), self.paths["hn2"])
        self.slaves = (sa, sb)  # kept open so the masters never see EIO while nodes restart
        self.log = open(log_path, "w")
        self.stop = False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        import select
        names = {self.ma: ("hn1->hn2", self.mb), self.mb: ("hn2->hn1", self.ma)}
        while not self.stop:
            r, _, _ = select.select([self.ma, self.mb], [], [], 0.2)
            for fd in r:
                try:
                    b = os.read(fd, 4096)
                except OSError:
                    continue
                d, other = names[fd]
                self.log.write(json.dumps({"t": time.time(), "dir": d, "hex": b.hex()}) + "\n")
                self.log.flush()
                os.write(other, b)

    def close(self):
        self.stop = True
        self.th.join(timeout=2)
        self.log.close()


def serial_frames(bytes_log):
    streams = {}
    for ln in open(bytes_log):
        r = json.loads(ln)
        s = streams.setdefault(r["dir"], [bytearray(), []])
        s[1].append((len(s[0]), r["t"]))
        s[0] += bytes.fromhex(r["hex"])
    out = []
    for d, (buf, marks) in streams.items():
        buf = bytes(buf)
        p = 0
        while True:
            a = buf.find(b">>>\n", p)
            if a < 0:
                break
            e = buf.find(b"<<<\n", a)
            if e < 0:
                break
            e += 4
            t = max(tt for off, tt in marks if off < e)
            out.append((t, d, buf[a:e]))
            p = e
    out.sort(key=lambda x: x[0])
    return out


# ------------------------------------------------------------------ the rig
class Rig:
    def __init__(self, name, sc, outdir):
        self.name, self.sc, self.outdir = name, sc, outdir
        self.dir = tempfile.mkdtemp(prefix="hbcap-%s-" % name)
        self.br = "hcbr" + TAG
        self.ns = {"hn1": "hcn1" + TAG, "hn2": "hcn2" + TAG}
        self.init = {}
        self.events = []
        self.sniffer = None
        self.relay = None

    def event(self, what):
        self.events.append((time.time(), what))
        print("  %s" % what, flush=True)

    def setup(self):
        sh(["ip", "netns", "add", self.br])
        sh(["ip", "-n", self.br, "link", "add", "br0", "type", "bridge"])
        sh(["ip", "-n", self.br, "link", "set", "br0", "up", "promisc", "on"])
        for n in ("hn1", "hn2"):
            ns = self.ns[n]
            sh(["ip", "netns", "add", ns])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            sh(["ip", "-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", "p" + n, "netns", self.br])
            sh(["ip", "-n", self.br, "link", "set", "p" + n, "master", "br0", "up"])
            sh(["ip", "-n", ns, "addr", "add", IP[n] + "/24", "brd", "+", "dev", "veth0"])
            sh(["ip", "-n", ns, "link", "set", "veth0", "up"])
            if self.sc["media"] == "mcast":
                sh(["ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "veth0"])
            self.prepare(n)
        if self.sc["media"] == "serial":
            self.relay = PtyRelay(self.dir, os.path.join(self.outdir, self.name + ".bytes.jsonl"))
        else:
            self.pcap = os.path.join(self.dir, "cap.pcap")
            self.stopfile = os.path.join(self.dir, "stop-sniffer")
            self.sniffer = subprocess.Popen(["ip", "netns", "exec", self.br, sys.executable, __file__, "--sniff",
                                             "br0", self.pcap, self.stopfile])
            wait_for(lambda: os.path.exists(self.pcap), 10, "sniffer")

    def prepare(self, n):
        d = os.path.join(self.dir, n)
        os.makedirs(os.path.join(d, "log"))
        shutil.copytree("/etc/ha.d", os.path.join(d, "etc-ha.d"), symlinks=True)
        shutil.copytree("/var/lib/heartbeat", os.path.join(d, "var-lib-heartbeat"), symlinks=True)
        for sub in ("hb_generation", "hb_uuid", "hostcache", "delhostcache"):
            p = os.path.join(d, "var-lib-heartbeat", sub)
            if os.path.exists(p):
                os.remove(p)
        run = os.path.join(d, "run")
        os.makedirs(run)
        for sub in ("heartbeat", "heartbeat/ccm", "heartbeat/crm", "heartbeat/dopd", "crm"):
            p = os.path.join(run, sub)
            os.makedirs(p)
            shutil.chown(p, "hacluster", "haclient")
            os.chmod(p, 0o750)
        for sub, mode in (("resource-agents", 0o1755), ("lock", 0o1777)):
            os.makedirs(os.path.join(run, sub))
            os.chmod(os.path.join(run, sub), mode)
        sc, peer = self.sc, "hn2" if n == "hn1" else "hn1"
        media = {"ucast": "udpport 694\nucast veth0 %s\n" % IP[peer],
                 "bcast": "udpport 694\nbcast veth0\n",
                 "mcast": "mcast veth0 %s 694 1 0\n" % MCAST,
                 "serial": "baud 19200\nserial %s\n" % (os.path.join(self.dir, "ttyA" if n == "hn1" else "ttyB"))}[sc["media"]]
        cf = ("logfile %s/log/ha-log\ndebugfile %s/log/ha-debug\nlogfacility none\nuse_logd no\n"
              "keepalive 1\ndeadtime 5\ninitdead 10\n%s%sauto_failback %s\nnode hn1\nnode hn2\ncrm off\n"
              % (d, d, media, "msgfmt %s\n" % sc["msgfmt"] if "msgfmt" in sc else "", sc.get("failback", "on")))
        ha = os.path.join(d, "etc-ha.d")
        open(os.path.join(ha, "ha.cf"), "w").write(cf)
        open(os.path.join(ha, "haresources"), "w").write("hn1 IPaddr::%s/24/veth0\n" % VIP)
        auth = {"sha1": "1 sha1 " + KEY, "md5": "1 md5 " + KEY, "crc": "1 crc"}[sc["auth"]]
        ak = os.path.join(ha, "authkeys")
        open(ak, "w").write("auth 1\n%s\n" % auth)
        os.chmod(ak, 0o600)

    def boot(self, n):
        d = os.path.join(self.dir, n)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[n], "unshare", "--mount", "--uts", "--pid", "--fork",
                              "--mount-proc", NODE_INIT, n, d],
                             stdout=open(os.path.join(d, "log", "init.out"), "a"), stderr=subprocess.STDOUT)

        def child():
            try:
                kids = open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()
                k = int(kids[0])
                return k if "python" in os.path.basename(os.readlink("/proc/%d/exe" % k)) else None
            except (OSError, IndexError):
                return None
        self.init[n] = (p, wait_for(child, 10, n + " init"))

    def exec(self, n, cmd, check=True, timeout=60):
        return sh(["nsenter", "-t", str(self.init[n][1]), "-n", "-m", "-u", "-p", "--"] + cmd, check=check,
                  timeout=timeout)

    def hb_pids(self, n):
        r = self.exec(n, ["pgrep", "-f", "heartbeat:"], check=False)
        return r.stdout.split()

    def holds_vip(self, n):
        r = sh(["ip", "-n", self.ns[n], "-o", "addr", "show"], check=False)
        return (" %s/" % VIP) in r.stdout

    def step(self, action, arg):
        if action == "start":
            if arg not in self.init:
                self.boot(arg)
            self.event("start " + arg)
            self.exec(arg, [HB])
        elif action == "stop":
            self.event("%s: heartbeat -k (begin)" % arg)
            try:
                self.exec(arg, [HB, "-k"], check=False, timeout=40)
                self.event("%s: heartbeat -k returned" % arg)
                wait_for(lambda: not self.hb_pids(arg), 30, arg + " heartbeat gone")
                self.event("%s: no heartbeat processes left" % arg)
            except (subprocess.TimeoutExpired, RuntimeError):
                # Seen with msgfmt netstring: a lost message leaves the standby protocol
                # waiting, and heartbeat delays its shutdown until that times out (an hour).
                self.event("%s: heartbeat -k still waiting after 40 s; machine killed" % arg)
                self.kill(arg)
        elif action == "kill":
            self.event("%s: kill -9 (the whole machine)" % arg)
            self.kill(arg)
        elif action == "standby":
            self.event("%s: hb_standby" % arg)
            self.exec(arg, ["/usr/share/heartbeat/hb_standby"])
        elif action == "takeover":
            self.event("%s: hb_takeover" % arg)
            self.exec(arg, ["/usr/share/heartbeat/hb_takeover"])
        elif action == "vip":
            wait_for(lambda: self.holds_vip(arg), 60, "VIP on " + arg)
            self.event("VIP on " + arg)
        elif action == "drop":
            ns = self.ns["hn2"]
            if arg == "on":
                sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=(
                    "table inet hbcap {\n chain input {\n  type filter hook input priority 0;\n"
                    "  ip saddr %s udp dport 694 numgen inc mod 4 == 1 counter drop\n }\n}\n" % IP["hn1"]))
                self.event("hn2: nft drops every 4th datagram from hn1")
            else:
                r = sh(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "hbcap"])
                sh(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "hbcap"])
                words = r.stdout.split()
                n = words[words.index("packets") + 1] if "packets" in words else "?"
                self.event("hn2: nft drop rule removed (%s datagrams dropped)" % n)
        elif action == "sleep":
            pass

    def kill(self, n):
        if n in self.init:
            p, pid = self.init.pop(n)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)

    def run(self):
        print("== %s" % self.name, flush=True)
        self.setup()
        time.sleep(0.5)
        if self.sniffer:
            self.event("capture started (br0 in netns %s)" % self.br)
        else:
            self.event("pty relay started")
        for delay, action, arg in self.sc["steps"]:
            time.sleep(delay)
            self.step(action, arg)
        time.sleep(1)
        self.finish()

    def finish(self):
        out = self.outdir
        recs = []
        if self.sniffer:
            open(self.stopfile, "w").close()
            self.sniffer.wait(timeout=10)
            self.event("capture stopped")
            node = {v: k for k, v in IP.items()}
            for t, src, sport, dst, dport, payload in read_pcap(self.pcap):
                if src not in node:
                    continue
                d = "%s->%s" % (node[src], node.get(dst, dst))
                recs.append((t, d, "%s:%d" % (src, sport), "%s:%d" % (dst, dport), payload))
        else:
            self.relay.close()
            self.event("relay stopped")
            for t, d, frame in serial_frames(os.path.join(out, self.name + ".bytes.jsonl")):
                recs.append((t, d, "serial", "serial", frame))
        with open(os.path.join(out, self.name + ".messages.jsonl"), "w") as f:
            for i, (t, d, s, dd, payload) in enumerate(recs, 1):
                f.write(json.dumps(message_record(i, t, d, s, dd, payload), separators=(",", ":")) + "\n")
        with open(os.path.join(out, self.name + "-events.txt"), "w") as f:
            for t, what in self.events:
                f.write("%.6f %s\n" % (t, what))
        for n in ("hn1", "hn2"):
            dst = os.path.join(out, "configs", self.name, n)
            os.makedirs(dst, exist_ok=True)
            d = os.path.join(self.dir, n)
            for fn in ("ha.cf", "haresources", "authkeys"):
                txt = open(os.path.join(d, "etc-ha.d", fn)).read().replace(self.dir, "/tmp/hbcap")
                open(os.path.join(dst, fn), "w").write(txt)
            log = os.path.join(d, "log", "ha-log")
            if os.path.exists(log):
                open(os.path.join(dst, "ha-log"), "w").write(open(log).read().replace(self.dir, "/tmp/hbcap"))
        print("   %d messages" % len(recs), flush=True)

    def cleanup(self):
        for n in list(self.init):
            self.kill(n)
        if self.sniffer and self.sniffer.poll() is None:
            self.sniffer.kill()
        if self.relay and not self.relay.stop:
            self.relay.close()
        for ns in list(self.ns.values()) + [self.br]:
            sh(["ip", "netns", "del", ns], check=False)
        if os.environ.get("HBCAP_KEEP"):
            print("   kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def main(argv):
    if argv[:1] == ["--sniff"]:
        sniff(*argv[1:4])
        return 0
    if argv[:1] == ["--list"] or not argv:
        print("\n".join(SCENARIOS))
        return 0 if argv else 2
    outdir = os.path.abspath(argv[0])
    names = argv[1:] or list(SCENARIOS)
    os.makedirs(outdir, exist_ok=True)
    for name in names:
        rig = Rig(name, SCENARIOS[name], outdir)
        try:
            rig.run()
        finally:
            rig.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
