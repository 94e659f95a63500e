# Sourced by scripts/run and scripts/test: make .venv and install legwave into it when needed.
# The install is repeated only when pyproject.toml changed since the last one.
set -o errexit -o pipefail -o nounset
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LEGWAVE_VENV:-$root/.venv}"
extras="${1:-dev}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.legwave-$extras"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[$extras]"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$root"
