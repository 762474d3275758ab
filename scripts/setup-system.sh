#!/usr/bin/env bash
# Installs the Debian packages the kernel backends, their tests and the demo need;
# with the argument "bench", also the load generators the benchmarks use.
# Idempotent: does nothing when everything is present. Needs root (CI runs as root).
set -euo pipefail
need=()
if [ "${1:-}" = bench ]; then
  for pair in wrk:wrk nginx:nginx-light iperf3:iperf3; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
  done
fi
for pair in clang:clang llc:llvm bpftool:bpftool iptables:iptables ipset:ipset nft:nftables \
            ip:iproute2 conntrack:conntrack nsenter:util-linux; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
ls /usr/lib/x86_64-linux-gnu/libbpf.so.1* >/dev/null 2>&1 || need+=(libbpf1)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages (${need[*]}); run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
