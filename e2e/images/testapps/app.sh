#!/bin/sh
# A shell app as people write them: exits cleanly on SIGTERM, if it ever receives it.
#   APP_ORPHANS=N     leave N short-lived orphans (reparented to PID 1) at start
#   APP_EXIT_CODE=N   exit with N right after starting instead of running
#   APP_STOP_SIGNAL=S exit cleanly on signal S (QUIT, INT, ...) instead, and ignore SIGTERM
#                     and the other stop signals, as nginx leaves gracefully on SIGQUIT only
if [ -n "${APP_STOP_SIGNAL:-}" ]; then
    trap '' TERM QUIT INT
    trap 'echo "app: SIG$APP_STOP_SIGNAL, shutting down"; exit 0' "$APP_STOP_SIGNAL"
else
    trap 'echo "app: SIGTERM, shutting down"; exit 0' TERM
fi
echo "app: started as pid $$"
i=0
while [ "$i" -lt "${APP_ORPHANS:-0}" ]; do
    (sleep 0.2 &)
    i=$((i + 1))
done
echo "app: left $i orphans"
if [ -n "${APP_EXIT_CODE:-}" ]; then
    exit "$APP_EXIT_CODE"
fi
while :; do
    sleep 1 &
    wait $!
done
