#!/usr/bin/env bash
# Install what kroute's build and tests need on a fresh Debian 12 machine.
# Run as root; safe to run again (installs only what is missing).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "setup-debian.sh: run as root (it installs packages with apt-get)" >&2
    exit 1
fi

# Debian package → a command it provides, to skip apt when all are present.
declare -A provides=(
    [bird2]=bird
    [frr]=vtysh
    [gobgpd]=gobgpd
    [iproute2]=ip
    [iputils-ping]=ping
    [exabgp]=exabgp
    [procps]=pgrep
    [python3]=python3
    [python3-pip]=pip3
    [g++]=g++
    [util-linux]=setpriv
    [curl]=curl
    [pmacct]=pmbmpd
    # The benchmark's BFD variant drops a sender's packets with iptables.
    [iptables]=iptables
)
missing=()
for pkg in "${!provides[@]}"; do
    command -v "${provides[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-debian.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Kubernetes API the tests and `kroute lab up --scenario kubernetes` run
# against (src/lab/apiserver.py):
# PyPI's kmock, the Kopf project's API mock. Debian 12 marks its Python as
# externally managed, hence --break-system-packages (root, test machine).
if ! python3 -c 'import kmock' >/dev/null 2>&1; then
    echo "setup-debian.sh: pip install kmock"
    # `python3 -m pip`: the same interpreter the tests and the lab run.
    python3 -m pip install -q --break-system-packages 'kmock==0.8' 2>/dev/null \
        || python3 -m pip install -q 'kmock==0.8'
fi

# The packages may start their daemons on install where an init system
# exists; the tests start their own instances in namespaces.
# vtysh talks to FRR daemons only for members of frrvty.
if getent group frrvty >/dev/null && ! id -nG root | grep -qw frrvty; then
    usermod -a -G frrvty root
fi
mkdir -p /var/run/frr && chown frr:frr /var/run/frr

# Debian 12's own rustc (1.63) is too old for kroute's dependencies, and
# rustup is packaged only from Debian 13 on: the toolchain comes from rustup.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup-debian.sh: cargo is in ~/.cargo/bin but not on PATH; run: . \"\$HOME/.cargo/env\"" >&2
    exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
    cat >&2 <<'MSG'
setup-debian.sh: no Rust toolchain (cargo) found. Install the stable one with rustup,
then run this script again in the same shell:

    apt-get install -y curl ca-certificates
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    . "$HOME/.cargo/env"
MSG
    exit 1
fi
echo "setup-debian.sh: ready"
