#!/bin/sh
# www.sh [NAME ADDR DIR] start|stop|status: busybox httpd on ADDR:80 serving DIR/www, whose
# index is "NAME node-x" (without arguments: the group web, 192.0.2.100, /data, index
# "node-x"), so it needs the group's filesystem and address.
if [ $# -ge 4 ]; then NAME=$1 ADDR=$2 DIR=$3; shift 3; INDEX="$NAME $(uname -n)"
else NAME=web ADDR=192.0.2.100 DIR=/data; INDEX=$(uname -n); fi
PIDFILE=/run/www-$NAME.pid
# Running = the process exists and is not a zombie: httpd is reparented to the VM's /init
# (a shell), which reaps it only when it next waits, and kill -0 succeeds on zombies.
alive() { st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1); [ -n "$st" ] && [ "$st" != Z ]; }
running() { [ -r $PIDFILE ] && alive "$(cat $PIDFILE)"; }
case "$1" in
start)
    running && exit 0
    mkdir -p $DIR/www && echo "$INDEX" > $DIR/www/index.html || exit 1
    /bin/start-stop-daemon -S -b -m -p $PIDFILE -x /bin/httpd -- -f -p $ADDR:80 -h $DIR/www
    i=0; until /bin/netstat -ltn | grep -q "$ADDR:80 "; do
        i=$((i+1)); [ $i -lt 50 ] || exit 1; /bin/usleep 100000
    done ;;
stop)
    running || { rm -f $PIDFILE; exit 0; }
    pid=$(cat $PIDFILE); kill "$pid"
    i=0; while alive $pid; do
        i=$((i+1)); [ $i -lt 50 ] || kill -KILL $pid; [ $i -lt 60 ] || exit 1; /bin/usleep 100000
    done
    rm -f $PIDFILE ;;
status) running || exit 3 ;;
*) exit 2 ;;
esac
exit 0
