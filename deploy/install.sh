#!/usr/bin/env bash
# Install legwave as a systemd service on Raspberry Pi OS (Bookworm or newer).
#
#   sudo deploy/install.sh [--backend gpiozero|rpigpio] [--source DIR | --version X.Y.Z] [--start]
#
# What it does, each step safe to repeat:
#   1. apt: python3-venv, python3-lgpio (lgpio for the gpiozero backend), i2c-tools, mosquitto
#   2. a system user "legwave" in the gpio and i2c groups, home and state in /var/lib/legwave
#   3. a venv in /opt/legwave/venv (with the system site packages, so Debian's lgpio is used)
#      and legwave[pi] in it, from this checkout or from PyPI
#   4. /etc/legwave/config.yaml (root:legwave, 0640), only when there is none yet
#   5. I2C switched on with raspi-config when it is there
#   6. /etc/systemd/system/legwave.service, enabled (started with --start)
#
# DESTDIR=/some/folder stages everything under that folder instead and only prints the steps
# that change the running system (apt, users, raspi-config, systemctl): for packaging, and for
# the project's tests.
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
destdir="${DESTDIR:-}"
prefix=/opt/legwave
etc=/etc/legwave
state=/var/lib/legwave
unit_dir=/etc/systemd/system
backend=gpiozero
source_dir="$(dirname "$here")"
version=""
start=no
pip_args=()

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
say() { printf 'legwave install: %s\n' "$*"; }
die() { printf 'legwave install: error: %s\n' "$*" >&2; exit 1; }
system() {  # change the running system, or say what it would be when staging
    if [ -n "$destdir" ]; then say "would run: $*"; else "$@"; fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --backend) backend="${2:?}"; shift 2 ;;
        --source) source_dir="${2:?}"; shift 2 ;;
        --version) version="${2:?}"; shift 2 ;;
        --start) start=yes; shift ;;
        --pip-arg) pip_args+=("${2:?}"); shift 2 ;;
        -h|--help) usage 0 ;;
        *) printf 'unknown option: %s\n\n' "$1" >&2; usage 2 ;;
    esac
done
case "$backend" in gpiozero|rpigpio) ;; *) die "--backend must be gpiozero or rpigpio" ;; esac
if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then die "run as root (sudo $0)"; fi
if [ -z "$version" ] && [ ! -f "$source_dir/pyproject.toml" ]; then
    die "$source_dir is not a legwave checkout: give --source DIR or --version X.Y.Z"
fi

say "1/6 system packages"
system apt-get update -qq
system apt-get install -y -qq python3-venv python3-lgpio i2c-tools mosquitto

say "2/6 user legwave (groups gpio, i2c)"
for group in gpio i2c; do
    if [ -n "$destdir" ] || ! getent group "$group" >/dev/null; then
        system groupadd --system -f "$group"
    fi
done
if [ -n "$destdir" ] || ! id legwave >/dev/null 2>&1; then
    system useradd --system --home-dir "$state" --no-create-home --shell /usr/sbin/nologin \
        --groups gpio,i2c legwave
else
    system usermod -a -G gpio,i2c legwave
fi

say "3/6 venv in $prefix/venv"
venv="$destdir$prefix/venv"
mkdir -p "$destdir$prefix"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv --system-site-packages "$venv"
fi
if [ -n "$version" ]; then
    package="legwave[pi]==$version"
else
    package="$source_dir[pi]"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pip_args[@]}" "$package"
mkdir -p "$destdir$prefix/docs"
if [ -f "$source_dir/docs/hardware.md" ]; then
    cp "$source_dir/docs/hardware.md" "$destdir$prefix/docs/"
fi

say "4/6 configuration in $etc"
mkdir -p "$destdir$etc" "$destdir$state"
config="$destdir$etc/config.yaml"
if [ -f "$config" ]; then
    say "keeping the existing $etc/config.yaml"
else
    umask 027
    cat > "$config" <<EOF
# legwave on this Raspberry Pi. Every setting: docs/hardware.md and the README.
# Check it with: sudo -u legwave $prefix/venv/bin/legwave --config $etc/config.yaml doctor
backend: $backend
state_dir: $state
mqtt:
  host: 127.0.0.1          # your broker (Home Assistant's Mosquitto add-on: its address)
  port: 1883
  # username: legwave
  # password: "..."
# device:
#   zones: [foot, ankle, calf, upper_calf]
#   limits: {max_setpoint_mmhg: 70}    # limits can only be lowered
# pi:                                  # the reference wiring is the default (docs/hardware.md)
#   pins: {pump: 18, vibration: 13, heater_supply: 26, heaters: [20, 21],
#          inlets: [12, 16, 19, 24], exhausts: [17, 27, 22, 23]}
EOF
    umask 022
    chmod 0640 "$config"
    system chown root:legwave "$config"
fi
system chown legwave:legwave "$state"
system chmod 0750 "$state"

say "5/6 I2C (1-wire for DS18B20 sensors: see docs/hardware.md)"
if [ -n "$destdir" ] || command -v raspi-config >/dev/null 2>&1; then
    system raspi-config nonint do_i2c 0
else
    say "raspi-config not found: enable I2C yourself (dtparam=i2c_arm=on)"
fi

say "6/6 systemd unit"
mkdir -p "$destdir$unit_dir"
sed "s#/opt/legwave#$prefix#g; s#/etc/legwave#$etc#g" "$here/legwave.service" \
    > "$destdir$unit_dir/legwave.service"
chmod 0644 "$destdir$unit_dir/legwave.service"
system systemctl daemon-reload
system systemctl enable legwave.service
if [ "$start" = yes ]; then
    system systemctl restart legwave.service
fi

say "done. Next:"
say "  edit $etc/config.yaml (broker, wiring), then check the install:"
say "  sudo -u legwave $prefix/venv/bin/legwave --config $etc/config.yaml doctor"
say "  sudo systemctl start legwave && journalctl -u legwave -f"
