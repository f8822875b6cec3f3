#!/bin/sh
# http_lib.sh - start and stop a real nginx (Debian nginx-light) on loopback
# for the remote-bundle tests, from a config generated in a temp dir.
#
# Sourced:   . tests/http_lib.sh; http_nginx_start ROOT WORK; ...; http_nginx_stop WORK
#            (sets HTTP_PORT; call http_nginx_stop from your EXIT trap)
# Command:   sh tests/http_lib.sh start ROOT WORK   prints the port
#            sh tests/http_lib.sh stop WORK
# ROOT is the directory served; WORK holds ngx.conf, ngx.pid, e.log and
# nginx's temp dirs.  nginx runs as a daemon bound to 127.0.0.1 on a free
# port in 18000-18999, or HTTP_PORT_LO .. +HTTP_PORT_SPAN-1 (tried from a random start; a port in use makes nginx
# exit, and the next is tried).  Exits 77 (skip) when nginx is missing.
# The access log (WORK/access.log) has one line per request: connection
# number, request number on it, status, Range header.  NGX_DAEMON=off
# makes http_nginx_conf write a foreground config (for a caller that spawns
# nginx itself, as tests/httpsrv.c does); NGX_TLS_CERT and NGX_TLS_KEY (PEM
# files) make it serve https.

http_nginx_conf() { # ROOT WORK PORT
	# As root, nginx's workers would run as nobody and could not read a
	# private temp dir: keep them as the caller.
	usr=""
	[ "$(id -u)" = 0 ] && usr="user root;"
	# Foreground (spawned by a test): one process, so killing it stops all.
	[ "${NGX_DAEMON:-on}" = off ] && usr="$usr master_process off;"
	# NGX_TLS_CERT / NGX_TLS_KEY (PEM files): serve https instead.
	tls=""
	[ -n "${NGX_TLS_CERT:-}" ] && tls=" ssl; ssl_certificate $NGX_TLS_CERT; ssl_certificate_key $NGX_TLS_KEY"
	cat >"$2/ngx.conf" <<CONF
$usr
daemon ${NGX_DAEMON:-on};
worker_processes 1;
pid $2/ngx.pid;
error_log $2/e.log;
events { worker_connections 256; }
http {
	log_format apb '\$connection \$connection_requests \$status "\$http_range"';
	access_log $2/access.log apb;
	client_body_temp_path $2/tmp;
	proxy_temp_path $2/tmp;
	fastcgi_temp_path $2/tmp;
	uwsgi_temp_path $2/tmp;
	scgi_temp_path $2/tmp;
	keepalive_requests 100000;
	server {
		listen 127.0.0.1:$3$tls;
		root $1;
		add_header Accept-Ranges bytes always;
		autoindex on;    # rclone's :http: remote lists the directory
	}
}
CONF
}

http_nginx_start() { # ROOT WORK
	command -v nginx >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
	command -v nginx >/dev/null 2>&1 || { echo "nginx not installed" >&2; return 77; }
	mkdir -p "$2/tmp"
	lo=${HTTP_PORT_LO:-18000} span=${HTTP_PORT_SPAN:-1000}
	base=$(( ($$ * 7919 + $(date +%N | sed 's/^0*//;s/^$/0/')) % span ))
	i=0
	while [ $i -lt 40 ]; do
		HTTP_PORT=$(( lo + (base + i * 37) % span ))
		http_nginx_conf "$1" "$2" "$HTTP_PORT"
		rm -f "$2/ngx.pid"
		if nginx -c "$2/ngx.conf" -p "$2" 2>>"$2/start.log"; then
			n=0
			while [ ! -s "$2/ngx.pid" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
			[ -s "$2/ngx.pid" ] && return 0
		fi
		i=$((i + 1))
	done
	echo "http_lib.sh: nginx did not start (see $2/start.log)" >&2
	return 1
}

http_nginx_stop() { # WORK
	[ -s "$1/ngx.pid" ] || return 0
	pid=$(cat "$1/ngx.pid")
	kill "$pid" 2>/dev/null || true
	n=0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$1/ngx.pid"
}

# http_mount_setup: for the mount tests, after mount_lib.sh: NGX and WWW
# under $WORK, an EXIT trap stopping nginx before mount_lib's cleanup;
# skips (exit 77) without nginx.
http_mount_setup() {
	NGX=$WORK/ngx
	WWW=$WORK/www
	trap 'http_nginx_stop "$NGX"; cleanup' EXIT
	command -v nginx >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
	command -v nginx >/dev/null 2>&1 || { echo "SKIP: nginx not installed"; exit 77; }
	mkdir -p "$NGX" "$WWW"
}

case "${0##*/}" in
http_lib.sh)
	case "${1:-}" in
	start) http_nginx_start "$2" "$3" && echo "$HTTP_PORT" ;;
	stop) http_nginx_stop "$2" ;;
	*) echo "usage: $0 start ROOT WORK | stop WORK" >&2; exit 2 ;;
	esac ;;
esac
