#!/bin/sh
# Install, with apt-get, the Debian/Ubuntu packages that a Dockyard task needs.
#
#     sh tools/packages.sh quickstart     what `tools/quickstart.sh` needs
#     sh tools/packages.sh test           what the test suite needs (a superset)
#
# Packages already installed are not asked for again, so a second run does not
# touch the network. Runs as root (re-executes itself with sudo otherwise).
# A chapter that makes the suite need a new program adds its package to TEST.
set -eu

QUICKSTART="python3 busybox-static iptables"  # iptables: NAT for final/'s default bridge network
TEST="$QUICKSTART python3-pytest gcc libc6-dev util-linux mount iproute2
      runc crun skopeo umoci docker-registry openssl containerd"

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: run this as root (sudo is not installed)" >&2; exit 1; }
    exec sudo -- sh "$0" "$@"
fi

case "${1:-}" in
    quickstart) wanted=$QUICKSTART ;;
    test) wanted=$TEST ;;
    *) echo "usage: sh $0 quickstart|test" >&2; exit 2 ;;
esac

# Debian's docker-registry package runs, as a service, a registry on :5000 of every interface with
# no auth: an open registry on the network, on the port chapter 06's lesson uses. The suite starts
# the program itself, on loopback ports of its own, so the service is masked before the install
# (systemd never starts it) and stopped and disabled after it (sysvinit), on every run.
keep_registry_service_off() {
    if command -v systemctl >/dev/null; then
        systemctl mask docker-registry.service >/dev/null 2>&1 || true
        systemctl stop docker-registry.service >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null; then
        invoke-rc.d docker-registry stop >/dev/null 2>&1 || true
        update-rc.d docker-registry disable >/dev/null 2>&1 || true
    fi
}

missing=""
for package in $wanted; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $package"
done
case " $wanted " in *" docker-registry "*) keep_registry_service_off ;; esac
[ -z "$missing" ] && exit 0

# containerd's package starts a system containerd; the suite starts a private one of its own
# (tests/test_containerd.py). Keep the service off only when we are the ones installing it: a
# machine that already has containerd (Docker's, say) keeps it as it is.
keep_containerd_service_off() {
    case " $missing " in *" containerd "*) ;; *) return 0 ;; esac
    if command -v systemctl >/dev/null; then
        systemctl mask containerd.service >/dev/null 2>&1 || true
        systemctl stop containerd.service >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null; then
        invoke-rc.d containerd stop >/dev/null 2>&1 || true
        update-rc.d containerd disable >/dev/null 2>&1 || true
    fi
}
keep_containerd_service_off

echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # one word per package
apt-get install -y -q --no-install-recommends $missing
case " $wanted " in *" docker-registry "*) keep_registry_service_off ;; esac
keep_containerd_service_off
