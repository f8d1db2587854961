#!/usr/bin/env bash
# Sets up fleetcare in this checkout: Debian packages it needs, a Python
# virtual environment in .venv with the pinned Ansible, and the package itself.
#   ./setup.sh          what `fleetcare inspect` needs
#   ./setup.sh --test   also what the test suite needs (podman, chromium, lab images)
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

want_test=false
[ "${1:-}" = "--test" ] && want_test=true

say() { printf 'setup: %s\n' "$*" >&2; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]} (run as root, or install them first)"
        exit 2
    fi
    say "installing ${missing[*]}"
    if [ -z "${FLEETCARE_APT_UPDATED:-}" ]; then
        apt-get update -qq
        export FLEETCARE_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python=${PYTHON:-python3}
# Debian's python3 has no ensurepip until python3-venv is installed.
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
fi
if $want_test; then
    # fonts-wqy-microhei: CJK glyphs for the zh-CN report in the browser test (the report uses no web fonts)
    apt_install podman runc debootstrap openssh-client uidmap slirp4netns fuse-overlayfs \
        chromium ca-certificates prometheus prometheus-node-exporter prometheus-alertmanager \
        apt-utils dpkg-dev fonts-wqy-microhei util-linux restic debsecan
    # the VM lab (fleetcare_lab/vm.py): qemu, qemu-img, and GRUB's BIOS images written into the disk
    apt_install qemu-system-x86 qemu-utils grub-pc-bin e2fsprogs
fi

if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$python" -m venv .venv
fi
stamp=.venv/.fleetcare-installed
extras=""
$want_test && extras="[test]"
# an install with the test extras covers a plain one too
installed=""
for candidate in "$stamp[test]" "$stamp$extras"; do
    if [ -f "$candidate" ] && [ ! pyproject.toml -nt "$candidate" ]; then
        { [ "$candidate" = "$stamp$extras" ] || [ -z "$extras" ]; } && installed=yes
    fi
done
if [ -z "$installed" ]; then
    say "installing fleetcare$extras and Ansible into .venv (about 30 s)"
    log=.venv/pip-install.log
    if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".$extras"; } \
            >"$log" 2>&1; then
        cat "$log" >&2
        say "pip install failed (the log above is kept in $log)"
        exit 1
    fi
    touch "$stamp$extras"
fi
# An editable install compiles nothing: without this, a shell that sets PYTHONDONTWRITEBYTECODE
# would compile the wrapper and the collection's plugins from source on every run (about 0.2 s
# of CPU each time). Only what is older than its source is compiled again.
.venv/bin/python -m compileall -q fleetcare fleetcare_lab plugins runner.py >/dev/null
if $want_test; then
    say "building the lab images (cached after the first time)"
    .venv/bin/fleetcare lab images
fi
say "ready: .venv/bin/fleetcare --help"
