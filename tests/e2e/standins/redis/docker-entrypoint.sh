#!/bin/sh
# Stand-in for the official redis image's docker-entrypoint.sh (redis:7-alpine).
set -e

# First arg is an option (`--port 6380`, `-v`) or a config file: run redis-server with it.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# Running as root: fix /data ownership and re-run this script as user redis.
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
	# The official image patches redis so that protected-mode defaults to "no" (otherwise a
	# password-less redis refuses clients from other containers). Debian's redis-server keeps
	# the upstream default "yes", so emulate the patch: unless the command line or the config
	# file (if one is given) sets protected-mode, append `--protected-mode no`.
	want=yes
	for arg; do
		case "$arg" in --protected-mode | --protected-mode=*) want=no ;; esac
	done
	if [ "$want" = yes ] && [ "$#" -ge 2 ] && [ "${2#-}" = "$2" ] && [ -f "$2" ] &&
		grep -Eiq '^[[:space:]]*protected-mode[[:space:]]' "$2"; then
		want=no
	fi
	[ "$want" = no ] || set -- "$@" --protected-mode no
fi

# Same as the official image: a umask of 0077 for data files unless the caller chose one.
um="$(umask)"
if [ "$um" = '0022' ]; then umask 0077; fi

exec "$@"
