#!/usr/bin/env bash
# Installs the system packages Skiff's build and tests need on Debian 12.
# Idempotent: packages already present are skipped quickly.
set -euo pipefail
packages=(
  protobuf-compiler libprotobuf-dev   # etcd-client's build script runs protoc
  etcd-server                         # the etcd store backend's tests start a real etcd
  busybox-static                      # test images are built from it
  skopeo runc crun                    # registry interop and runtime comparisons
  nftables iptables iproute2          # service proxy and pod networking
  containernetworking-plugins         # CNI plugins (bridge, host-local) for the CNI test
  dnsmasq-base                        # `skiff bench dns`: the /etc/hosts-style reference resolver
  kubectl                             # pinned kubectl.1.27 ... kubectl.1.33 binaries
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
