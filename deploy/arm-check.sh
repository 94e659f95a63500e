#!/usr/bin/env bash
# Prove the Raspberry Pi install on ARM without a Pi: a Debian bookworm arm64 root made with
# debootstrap and run through qemu-user-static, legwave[pi] installed in it the way
# deploy/install.sh does (the same script, staged), then the Pi backend tests and legwave doctor
# run inside it. Opt-in: it needs root, Debian's mirror and PyPI, and takes a while.
#
#   sudo deploy/arm-check.sh [--root DIR] [--mirror URL]
#
# The root is kept (default: .arm-root in the checkout, git-ignored) so a second run only
# reinstalls legwave. The last lines are the result: versions, times, tests passed.
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
checkout="$(dirname "$here")"
root="$checkout/.arm-root"
mirror="http://deb.debian.org/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="${2:?}"; shift 2 ;;
        --mirror) mirror="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
say() { printf 'arm-check: %s\n' "$*"; }
die() { printf 'arm-check: error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it mounts binfmt_misc and chroots)"
t_start=$SECONDS

say "1/6 host tools: debootstrap, qemu-user-static, binfmt-support"
missing=()
for tool in debootstrap qemu-aarch64-static update-binfmts; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    # wait for another apt to finish rather than fail on its lock
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        debootstrap qemu-user-static binfmt-support >/dev/null
fi
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "qemu-aarch64 is not registered with binfmt_misc"

say "2/6 a Debian bookworm arm64 root in $root"
t0=$SECONDS
if [ ! -x "$root/usr/bin/python3" ]; then
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates,i2c-tools,git \
        bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
        || die "debootstrap failed: see $root.debootstrap.log"
fi
t_root=$((SECONDS - t0))

mounts=()
cleanup() {
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
for fs in proc sys dev; do
    mkdir -p "$root/$fs"
    mount --bind "/$fs" "$root/$fs"
    mounts+=("$root/$fs")
done
# the machine's pip configuration and CA bundle, so pip reaches the package index as here
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
for conf in /etc/pip.conf /etc/xdg/pip; do
    if [ -e "$conf" ]; then mkdir -p "$root$(dirname "$conf")"; cp -r "$conf" "$root$conf"; fi
done
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt LANG=C.UTF-8 "$@"; }
[ "$(in_root uname -m)" = aarch64 ] || die "the root does not run as aarch64"
# what install.sh's apt step brings on a Pi (staged below, so it is installed here): the broker
if [ ! -x "$root/usr/sbin/mosquitto" ]; then
    in_root apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto \
        >"$root.apt.log" 2>&1 || die "mosquitto did not install in the root: see $root.apt.log"
fi

say "3/6 this checkout into the root"
rm -rf "$root/src/legwave"
mkdir -p "$root/src/legwave"
git -C "$checkout" ls-files -z --cached --others --exclude-standard \
    | (cd "$checkout" && xargs -0 cp --parents -t "$root/src/legwave" 2>/dev/null || true)

say "4/6 deploy/install.sh, staged (no systemd in a chroot): legwave[pi] into a venv"
t0=$SECONDS
rm -rf "$root/stage"
in_root env DESTDIR=/stage bash /src/legwave/deploy/install.sh --backend gpiozero \
    --broker 127.0.0.1 >"$root.install.log" 2>&1 || die "install.sh failed: see $root.install.log"
t_install=$((SECONDS - t0))
venv=/stage/opt/legwave/venv
in_root "$venv/bin/python" -m pip install --quiet "pytest>=8" "pytest-timeout>=2.3" "hypothesis>=6.100" >>"$root.install.log" 2>&1 \
    || die "pytest did not install: see $root.install.log"

say "5/6 the Pi backend tests, on aarch64"
t0=$SECONDS
set +o errexit
in_root sh -c "cd /src/legwave && $venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/device/pi tests/bridge/test_doctor.py tests/test_docs_match_the_code.py" \
    >"$root.pytest.log" 2>&1
tests_rc=$?
set -o errexit
t_tests=$((SECONDS - t0))

say "6/6 legwave doctor in the root (not a Pi: the board check must say so)"
set +o errexit
in_root "$venv/bin/legwave" doctor >"$root.doctor.log" 2>&1
set -o errexit

versions="$(in_root "$venv/bin/python" -c '
import importlib.metadata as m, platform
names = ["legwave", "gpiozero", "lgpio", "rpi-lgpio", "smbus2", "pydantic-core", "aiomqtt"]
found = []
for n in names:
    try:
        found.append(f"{n} {m.version(n)}")
    except m.PackageNotFoundError:
        found.append(f"{n} missing")
print(f"Python {platform.python_version()} on {platform.machine()}; " + ", ".join(found))
')"
say "result: $versions"
say "result: root $t_root s, install $t_install s, tests $t_tests s, total $((SECONDS - t_start)) s"
say "result: tests: $(tail -n 1 "$root.pytest.log")"
say "result: doctor: $(grep -E 'board|problem' "$root.doctor.log" | tr -s ' ' | paste -sd ';' -)"
exit "$tests_rc"
