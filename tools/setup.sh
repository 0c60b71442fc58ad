#!/usr/bin/env bash
# Idempotent set-up for tinylr on Debian/Ubuntu: the Debian packages the pipeline
# calls (cross compiler, newlib, QEMU, host gcc), the Python venv with the pinned
# packages, and the project's QEMU plugin. Cheap when everything is already there.
# TINYLR_APT=never: never run apt-get, only print the command that would install
# what is missing (for machines where you manage packages yourself).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.tinylr-installed"

# --- Debian packages ---------------------------------------------------------
packages=()
if ! command -v arm-none-eabi-gcc >/dev/null 2>&1; then
    packages+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
elif [ ! -f "$(arm-none-eabi-gcc -print-file-name=nano.specs)" ]; then
    packages+=(libnewlib-arm-none-eabi)
fi
command -v qemu-system-arm >/dev/null 2>&1 || packages+=(qemu-system-arm)
command -v gcc >/dev/null 2>&1 || packages+=(gcc libc6-dev)
command -v clang >/dev/null 2>&1 || packages+=(clang)  # the generated C must build warning-free with it too
if [ ${#packages[@]} -gt 0 ]; then
    install_cmd="apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"
    echo "tinylr setup: installing Debian packages: ${packages[*]}"
    if [ "${TINYLR_APT:-auto}" = never ]; then
        echo "tinylr setup: missing Debian packages (${packages[*]}); TINYLR_APT=never, so not installing." >&2
        echo "Run this, then try again:  sudo sh -c '$install_cmd'" >&2
        exit 1
    elif [ "$(id -u)" = 0 ]; then
        sh -c "$install_cmd" >/dev/null || { echo "tinylr setup: failed; run: $install_cmd" >&2; exit 1; }
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo sh -c "DEBIAN_FRONTEND=noninteractive $install_cmd" >/dev/null \
            || { echo "tinylr setup: failed; run: sudo sh -c '$install_cmd'" >&2; exit 1; }
    else
        echo "tinylr setup: missing Debian packages (${packages[*]}) and no root or password-less sudo." >&2
        echo "Run this, then try again:  sudo sh -c '$install_cmd'" >&2
        exit 1
    fi
fi

# --- Python venv ---------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    python=""
    for candidate in "${PYTHON:-}" python3.11 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            python=$candidate
            break
        fi
    done
    if [ -z "$python" ]; then
        echo "tinylr setup: needs Python 3.11 (the pinned torch/tensorflow wheels are built for it);" \
             "install it (e.g. apt-get install python3.11-venv) or set PYTHON=/path/to/python3.11" >&2
        exit 1
    fi
    echo "tinylr setup: creating $VENV with $python"
    "$python" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    echo "tinylr setup: installing the pinned Python packages into $VENV (first time: ~2 minutes)"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -e '.[test]' >"$VENV/pip-install.log" 2>&1; then
        grep -v "is ignored: it is neither" "$VENV/pip-install.log" | tail -n 30 >&2
        echo "tinylr setup: pip install failed; full log: $VENV/pip-install.log" >&2
        exit 1
    fi
    touch "$STAMP"
fi

# --- the project's QEMU plugin (built with the host gcc, cached by source hash) ---
"$VENV/bin/python" -m tinylr.emulate.plugin >/dev/null
