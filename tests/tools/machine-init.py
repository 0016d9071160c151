#!/usr/bin/python3
"""PID 1 of a test machine (tests/common/machine.rs, tests/tools/machine-power.sh).

usage: machine-init.py NETNS LOG EXITS CMD...

Runs CMD in network namespace NETNS (`ip netns exec NETNS CMD...`), stdin from /dev/null and
output appended to LOG, and reaps every orphan of the PID namespace (the services a daemon
starts outlive the scripts that start them). Each exit of CMD is appended to EXITS as
`UNIX_TIME exit CODE` or `UNIX_TIME signal N`. SIGUSR1 starts CMD again once it is not
running (a daemon restarted on a live machine). The power switch ends everything with
SIGKILL.
"""
import os
import signal
import sys
import time


def main():
    ns, log, exits = sys.argv[1:4]
    cmd = ["ip", "netns", "exec", ns] + sys.argv[4:]
    sigs = {signal.SIGCHLD, signal.SIGUSR1}
    # Handlers, so that signals from the parent namespace are not dropped at a namespace's
    # init; blocked, so that they are taken by sigwait only.
    for s in sigs:
        signal.signal(s, lambda *_: None)
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    def spawn():
        pid = os.fork()
        if pid == 0:
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                for s in sigs:
                    signal.signal(s, signal.SIG_DFL)
                out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(out, 1)
                os.dup2(out, 2)
                os.execvp(cmd[0], cmd)
            finally:
                os._exit(127)
        return pid

    daemon = spawn()
    restart = False
    while True:
        if signal.sigwait(sigs) == signal.SIGUSR1:
            restart = True
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == daemon:
                daemon = None
                if os.WIFSIGNALED(status):
                    what = "signal %d" % os.WTERMSIG(status)
                else:
                    what = "exit %d" % os.WEXITSTATUS(status)
                with open(exits, "a") as f:
                    f.write("%.6f %s\n" % (time.time(), what))
        if restart and daemon is None:
            restart = False
            daemon = spawn()


main()
