#!/usr/bin/env bash
# Keeps the kernel from handing the stack's ports to client connections (.ci/run calls it).
# The default ports sit in Linux's ephemeral range (32768-60999): a connection the kernel gives
# one of them, a pooled one living as long as its pool, makes the server that starts later fail
# to bind it. Adds them to net.ipv4.ip_local_reserved_ports where this user may write it, and
# does nothing elsewhere; servers and clients that ask for a port by number are unaffected.
source "$(dirname "$0")/common.sh"

FILE=/proc/sys/net/ipv4/ip_local_reserved_ports
[ -w "$FILE" ] || { log "cannot write $FILE: the stack's ports are not reserved"; exit 0; }
# Elasticsearch's HTTP port to the last extra search server's transport range (common.sh, search_servers.sh).
ours="$PG_PORT,$REDIS_PORT,$MINIO_PORT-$MINIO_CONSOLE_PORT,$ES_PORT-$((ES_EXTRA_PORT + 3 + 109))"
current="$(cat "$FILE")"
echo "${current:+$current,}$ours" >"$FILE" 2>/dev/null || { log "could not reserve $ours in $FILE"; exit 0; }
log "reserved ports $ours (now: $(cat "$FILE"))"
