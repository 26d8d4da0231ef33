#!/bin/sh
# Install the Debian packages a make target needs, and only the missing ones.
# Usage: scripts/deps.sh GROUP...   (groups: build test run fuzz lint web plot)
# Checks each package with dpkg; runs apt-get as root, through sudo where it
# can, and otherwise prints the exact command for the user to run.
set -eu

pkgs_build="gcc make pkg-config libtirpc-dev rpcsvc-proto uthash-dev nettle-dev libmicrohttpd-dev"
pkgs_run="$pkgs_build rpcbind python3 python3-flask iproute2"
pkgs_test="$pkgs_run check python3-pytest python3-pytest-xdist util-linux"
pkgs_fuzz="$pkgs_build clang libclang-rt-14-dev"
pkgs_lint="$pkgs_build cppcheck clang-tidy valgrind"
# make test-web: the live view in a headless browser; make bench: its curves.
pkgs_web="chromium chromium-driver python3-selenium"
pkgs_plot="python3-matplotlib"

wanted=""
for group in "${@:-build}"; do
    case "$group" in
        build) wanted="$wanted $pkgs_build" ;;
        run)   wanted="$wanted $pkgs_run" ;;
        test)  wanted="$wanted $pkgs_test" ;;
        fuzz)  wanted="$wanted $pkgs_fuzz" ;;
        lint)  wanted="$wanted $pkgs_lint" ;;
        web)   wanted="$wanted $pkgs_web" ;;
        plot)  wanted="$wanted $pkgs_plot" ;;
        *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
    esac
done

missing=""
for p in $wanted; do
    case " $missing " in *" $p "*) continue ;; esac
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
else
    echo "peerdex needs these Debian packages:$missing" >&2
    echo "Install them as root with:" >&2
    echo "    apt-get update && $cmd" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# An apt-get update is needed on a fresh machine whose package lists are empty.
$sudo apt-get update -qq || true
$sudo $cmd
