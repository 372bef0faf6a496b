#!/bin/sh
# Installs what building, testing and benchmarking execnet-glib needs on Debian 12.
# Safe to run again: apt-get skips what is already there.
set -eu

packages="
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libglib2.0-bin libjson-glib-dev libssh-dev
  gobject-introspection libgirepository1.0-dev gi-docgen
  python3 python3-execnet python3-mitogen python3-gi gjs valac
  openssh-server openssh-client
  clang libclang-rt-14-dev
  procps iproute2 iptables
  sudo podman runc conmon catatonit
  slurmctld slurmd slurm-client munge
  rsync
"

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing:$missing"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# sshd refuses to start without its privilege separation directory; the ssh
# tests start a private sshd.
if [ ! -d /run/sshd ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO mkdir -p /run/sshd
fi
