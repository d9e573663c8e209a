#!/usr/bin/env bash
# Builds the container images the docker runtime uses by default (`redis:7`, `rabbitmq:3`)
# from Debian bookworm's packages, for engines that cannot pull from a registry.
#
#   scripts/build-images.sh            # or: just images
#
# Why this way: with no registry, the only source of a Redis or RabbitMQ build is the Debian
# mirror the machine already uses. debootstrap makes a minimal root filesystem, the package
# goes in with apt inside it, and `docker import` turns the tree into an image whose CMD, ENV,
# EXPOSE and VOLUME match the official images closely enough that rebound runs either one the
# same way (it passes its own server arguments anyway).
#
# Idempotent: an image that already exists is left alone, unless this script built it from an
# older recipe (its `rebound.recipe` label is below RECIPE): then it is built again. The minimal
# root filesystem and the downloaded packages are cached under target/images/ so a second build
# (another tag, or after `docker rmi`) skips the slow part.
#
# Environment: REBOUND_DEBIAN_MIRROR overrides the mirror read from the apt sources;
# REBOUND_REDIS_IMAGE / REBOUND_RABBITMQ_IMAGE override the names (defaults match rebound's).
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."

REDIS_IMAGE=${REBOUND_REDIS_IMAGE:-redis:7}
RABBITMQ_IMAGE=${REBOUND_RABBITMQ_IMAGE:-rabbitmq:3}
SUITE=bookworm
CACHE=${REBOUND_IMAGE_CACHE:-$PWD/target/images}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Bump when an image's contents change, so images built by an older version are rebuilt.
RECIPE=3

# Whether image $1 exists and is current: built elsewhere (a registry's image, used as it is)
# or by this recipe (images of the first recipe carry no `rebound.recipe` label).
exists() {
  local labels
  labels=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.description"}}|{{index .Config.Labels "rebound.recipe"}}' "$1" 2>/dev/null) || return 1
  case "$labels" in
    *"built by rebound|") return 1 ;;
    *"built by rebound|"*) [ "${labels##*|}" -ge "$RECIPE" ] ;;
    *) return 0 ;;
  esac
}

# The first Debian mirror in the apt sources that serves $SUITE itself (not -security or
# -updates), in either the one-line (.list) or the deb822 (.sources) format.
debian_mirror() {
  if [ -n "${REBOUND_DEBIAN_MIRROR:-}" ]; then
    echo "$REBOUND_DEBIAN_MIRROR"
    return
  fi
  local f found=""
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    found=$(awk -v suite="$SUITE" '
      $1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i+1) == suite) { print $i; exit }
      }' "$f")
    [ -n "$found" ] && break
  done
  if [ -z "$found" ]; then
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      # Stanzas are separated by blank lines; keep the URI of one whose Suites has $SUITE.
      found=$(awk -v suite="$SUITE" '
        function flush() { if (!done && deb && hit && uri != "") { print uri; done = 1; exit } deb = 0; hit = 0; uri = "" }
        /^[[:space:]]*$/ { flush(); next }
        /^Types:/ { deb = ($0 ~ /(^|[[:space:]])deb([[:space:]]|$)/) }
        /^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
        END { flush() }' "$f")
      [ -n "$found" ] && break
    done
  fi
  [ -n "$found" ] || die "no Debian $SUITE mirror in /etc/apt/sources.list*; set REBOUND_DEBIAN_MIRROR"
  echo "$found"
}

need_redis=1; need_rabbitmq=1
exists "$REDIS_IMAGE" && need_redis=0 && log "$REDIS_IMAGE exists"
exists "$RABBITMQ_IMAGE" && need_rabbitmq=0 && log "$RABBITMQ_IMAGE exists"
[ $need_redis = 0 ] && [ $need_rabbitmq = 0 ] && exit 0

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed; DOCKER_HOST=${DOCKER_HOST:-unset})"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
[ "$(id -u)" = 0 ] || die "debootstrap and chroot need root"

mirror=$(debian_mirror)
mkdir -p "$CACHE/debs"
base="$CACHE/$SUITE-minbase.tar"

work=$(mktemp -d "${TMPDIR:-/tmp}/rebound-images.XXXXXX")
mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

if [ ! -s "$base" ]; then
  log "debootstrap $SUITE (minbase) from $mirror"
  t0=$SECONDS
  debootstrap --variant=minbase --cache-dir="$CACHE/debs" "$SUITE" "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  tar -C "$work/base" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf --one-file-system "$work/base"
  log "base root filesystem cached in $base ($((SECONDS - t0)) s)"
fi

# build NAME PACKAGE SETUP-FUNCTION CHANGES...: unpack the base, install PACKAGE, run SETUP in
# the tree, import with the given Dockerfile-style changes.
build() {
  local name=$1 package=$2 setup=$3
  shift 3
  local root="$work/$package" t0=$SECONDS
  log "building $name from Debian's $package"
  mkdir -p "$root"
  tar -C "$root" -xf "$base"
  # No daemon may start inside the chroot (it would listen on the host's network).
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  mount --bind "$CACHE/debs" "$root/var/cache/apt/archives" && mounted+=("$root/var/cache/apt/archives")
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >"$work/$package.log" 2>&1 \
    || { tail -20 "$work/$package.log" >&2; die "installing $package failed (log above)"; }
  umount "$root/var/cache/apt/archives" "$root/proc"
  mounted=()
  "$setup" "$root"
  rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/tmp/*
  local changes=() c
  for c in "$@"; do changes+=(--change "$c"); done
  tar -C "$root" -c . | docker import "${changes[@]}" \
    --change "LABEL org.opencontainers.image.description=\"$package from Debian $SUITE, built by rebound\"" \
    --change "LABEL rebound.recipe=$RECIPE" \
    - "$name" >/dev/null
  rm -rf --one-file-system "$root"
  log "$name built in $((SECONDS - t0)) s ($(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}'))"
}

redis_setup() {
  mkdir -p "$1/data"
}

rabbitmq_setup() {
  # Like the official image: guest may log in from outside the container (connections arrive
  # from the bridge, not loopback), logs go to the console for `docker logs`.
  cat >"$1/etc/rabbitmq/rabbitmq.conf" <<'EOF'
loopback_users.guest = false
listeners.tcp.default = 5672
log.console = true
log.console.level = info
log.file = false
EOF
  echo '[].' >"$1/etc/rabbitmq/enabled_plugins"
  # A code path that is quick to search, as for local nodes (the reasons and the figures are in
  # harness/src/runtime/local/rabbitmq_libs.rs; in a container each failed file lookup costs
  # about 20 times more, so it matters more here): only `rabbit` and the applications it needs
  # in the plugins directory (Erlang itself reads the .app files), and one flat directory of
  # links to every module of those and of Erlang/OTP, first on the path (-pa, in the CMD).
  local lean=/usr/lib/rabbitmq/rebound-plugins flat=/usr/lib/rabbitmq/rebound-ebin app f
  cp scripts/images/rabbitmq-needed-apps.escript "$1/tmp/needed.escript"
  mkdir "$1$lean" "$1$flat"
  for app in $(chroot "$1" sh -c 'escript /tmp/needed.escript /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins'); do
    ln -s "$app" "$1$lean/"
  done
  [ -n "$(ls "$1$lean")" ] || die "no RabbitMQ application found for $lean"
  for f in "$1$lean"/*/ebin/*.beam "$1$lean"/*/ebin/*.app "$1"/usr/lib/erlang/lib/*/ebin/*.beam "$1"/usr/lib/erlang/lib/*/ebin/*.app; do
    f=${f#"$1"}
    [ -e "$1$flat/${f##*/}" ] || ln -s "$(readlink -f "$1$f" | sed "s#^$1##")" "$1$flat/"
  done
  chroot "$1" chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq /etc/rabbitmq
}

if [ $need_redis = 1 ]; then
  build "$REDIS_IMAGE" redis-server redis_setup \
    'WORKDIR /data' 'VOLUME /data' 'EXPOSE 6379' \
    'CMD ["redis-server", "--protected-mode", "no"]'
fi
if [ $need_rabbitmq = 1 ]; then
  # The script under /usr/lib runs the node in the foreground and stops it cleanly on SIGTERM;
  # the one on PATH is Debian's wrapper that would `su` from root.
  build "$RABBITMQ_IMAGE" rabbitmq-server rabbitmq_setup \
    'USER rabbitmq' 'ENV HOME=/var/lib/rabbitmq' \
    'ENV RABBITMQ_PLUGINS_DIR=/usr/lib/rabbitmq/rebound-plugins' \
    'ENV PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'VOLUME /var/lib/rabbitmq' 'EXPOSE 5672' \
    'ENV RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-pa /usr/lib/rabbitmq/rebound-ebin"' \
    'CMD ["rabbitmq-server"]'
fi
