#!/usr/bin/env bash
# Install legwave as a systemd service on Raspberry Pi OS (Bookworm or newer).
#
#   sudo deploy/install.sh [--backend gpiozero|rpigpio] [--source DIR | --version X.Y.Z]
#                          [--broker HOST[:PORT] | --local-broker] [--updates] [--start]
#
# Run it from the checkout it installs (copied or cloned onto the Pi). What it does, each step
# safe to repeat:
#   1. apt: python3-venv, python3-lgpio (lgpio for the gpiozero backend), i2c-tools; and
#      mosquitto, enabled on this Pi, with --local-broker or when no broker is given (--broker,
#      or mqtt.host in an existing configuration)
#   2. a system user "legwave" in the gpio and i2c groups, home and state in /var/lib/legwave
#   3. a venv in /opt/legwave/venv (with the system site packages, so Debian's lgpio is used)
#      and legwave[pi] in it, from this checkout or from PyPI
#   4. /etc/legwave/config.yaml (root:legwave, 0640), only when there is none yet
#   5. I2C switched on with raspi-config when it is there
#   6. /etc/systemd/system/legwave.service, enabled (started with --start), and the update
#      guard it runs around each start in /opt/legwave/update-guard.py; with --updates, the venv
#      belongs to the legwave user and the unit may write to it, so that Home Assistant's update
#      entity can install a new release (update.install in the configuration; docs/hardware.md)
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
updates=no
pip_args=()
broker=""
local_broker=auto

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
        --updates) updates=yes; shift ;;
        --broker) broker="${2:?}"; shift 2 ;;
        --local-broker) local_broker=yes; shift ;;
        --pip-arg) pip_args+=("${2:?}"); shift 2 ;;
        -h|--help) usage 0 ;;
        *) printf 'unknown option: %s\n\n' "$1" >&2; usage 2 ;;
    esac
done
case "$backend" in gpiozero|rpigpio) ;; *) die "--backend must be gpiozero or rpigpio" ;; esac
if [ -n "$broker" ] && [ "$local_broker" = yes ]; then
    die "--broker and --local-broker: choose one"
fi
broker_host="${broker%%:*}"
broker_port=1883
if [ "$broker" != "$broker_host" ]; then broker_port="${broker##*:}"; fi
case "$broker_port" in ''|*[!0-9]*) die "--broker HOST[:PORT]: $broker_port is not a port" ;; esac
if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then die "run as root (sudo $0)"; fi
if [ -z "$version" ] && [ ! -f "$source_dir/pyproject.toml" ]; then
    die "$source_dir is not a legwave checkout: give --source DIR or --version X.Y.Z"
fi

# A broker on this Pi only when asked, or when nothing names another one.
existing_host=""
if [ -f "$destdir$etc/config.yaml" ]; then
    existing_host="$(sed -n 's/^  host: *\([^ #]*\).*/\1/p' "$destdir$etc/config.yaml" | head -n 1)"
fi
if [ "$local_broker" = auto ]; then
    local_broker=yes
    case "${broker_host:-$existing_host}" in ''|127.0.0.1|localhost) ;; *) local_broker=no ;; esac
fi

say "1/6 system packages"
system apt-get update -qq
packages=(python3-venv python3-lgpio i2c-tools)
# python3-lgpio is Raspberry Pi OS's; on another Debian pip takes lgpio's own wheel instead
if [ -z "$destdir" ] && ! apt-cache show python3-lgpio >/dev/null 2>&1; then
    say "python3-lgpio is not packaged here (not Raspberry Pi OS): pip installs lgpio instead"
    packages=(python3-venv i2c-tools)
fi
if [ "$local_broker" = yes ]; then
    system apt-get install -y -qq "${packages[@]}" mosquitto
    system systemctl enable --now mosquitto.service
else
    say "no broker installed here: legwave uses ${broker_host:-$existing_host}"
    system apt-get install -y -qq "${packages[@]}"
fi

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
# The update guard runs with the standard library only and is not replaced by an update: the
# copy of the release installed now.
guard="$("$venv/bin/python" -c 'import bridge.update_guard as g; print(g.__file__)')"
install -m 0644 "$guard" "$destdir$prefix/update-guard.py"
if [ "$updates" = yes ]; then
    system chown -R legwave:legwave "$prefix/venv"
fi
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
  host: ${broker_host:-127.0.0.1}          # your broker (Home Assistant's Mosquitto add-on: its address)
  port: $broker_port
  # username: legwave
  # password: "..."
# device:
#   zones: [foot, ankle, calf, upper_calf]
#   limits: {max_setpoint_mmhg: 70}    # limits can only be lowered
# pi:                                  # the reference wiring is the default (docs/hardware.md)
#   pins: {pump: 18, vibration: 13, heater_supply: 26, heaters: [20, 21],
#          inlets: [12, 16, 19, 24], exhausts: [17, 27, 22, 23]}
# update:                              # an update entity in Home Assistant (docs/hardware.md)
#   source: https://pypi.org/pypi/legwave/json
#   install: true                      # installed with deploy/install.sh --updates
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
dropin="$destdir$unit_dir/legwave.service.d"
if [ "$updates" = yes ]; then
    mkdir -p "$dropin"
    printf '# deploy/install.sh --updates: the agent installs new releases into its venv\n[Service]\nReadWritePaths=%s\n' \
        "$prefix/venv" > "$dropin/updates.conf"
    chmod 0644 "$dropin/updates.conf"
else
    rm -f "$dropin/updates.conf"
fi
system systemctl daemon-reload
system systemctl enable legwave.service
if [ "$start" = yes ]; then
    system systemctl restart legwave.service
fi

lw="sudo -u legwave $prefix/venv/bin/legwave --config $etc/config.yaml"
say "done. Next, with the sleeves closed on a table (docs/hardware.md, Bring-up):"
say "  1. edit $etc/config.yaml: the broker's password, and the wiring if yours differs"
say "  2. $lw doctor"
say "  3. $lw calibrate          # a sphygmomanometer on each zone in turn"
say "  4. $lw selftest           # every valve, sensor and heater on its own zone"
say "  5. sudo systemctl start legwave && journalctl -u legwave -f"
say "  6. a first session at level 1: $lw ctl start --preset first_use"
