#!/usr/bin/env bash
# Installs the Debian 12 packages Palisade needs to build, test and run.
# Idempotent: packages already installed are left alone and apt is not touched
# when nothing is missing. Nothing is downloaded from anywhere but Debian's archive.
set -euo pipefail

# Build toolchain and libraries.
BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config
  clang libclang-rt-14-dev clang-format   # fuzzers (libFuzzer) and the format check
  libpcap-dev                             # pcap reading/writing
  libyaml-cpp-dev                         # policy files, with line numbers
  nlohmann-json3-dev                      # JSON on the control plane
  libcli11-dev                            # the palisade command line
  libssl-dev                              # OpenSSL 3: the log's SHA-256 chain and Ed25519 signatures
  libpcre2-dev                            # IDS rules: pcre, compiled (and later JIT-run) with PCRE2
  libisal-dev                             # IDS: gzip and deflate HTTP bodies (ISA-L igzip)
  zlib1g-dev                              # tests: gzip and deflate bodies to inspect
  libhyperscan-dev                        # IDS: the fast-pattern prefilter (x86-64 only)
  libmodsecurity-dev modsecurity-crs      # the gateway's WAF: libmodsecurity3 running the OWASP CRS
  libgtest-dev libgmock-dev               # unit tests
  libbenchmark-dev                        # bench/
)
# Real peers used by the tests.
TEST_PKGS=(
  tshark      # protocol-hierarchy counts the decoder is checked against; editcap for pcapng interop
  tcpdump
  dpdk-dev    # dpdk-test-acl: DPDK's rte_acl, the classifier's reference peer and benchmark rival
  # the live suite (tests/live): VMs in network namespaces talking through `palisade run`
  iproute2 ethtool iputils-ping netcat-openbsd curl python3 busybox
  iperf3      # bench/live_forwarding.sh: forwarding through palisade run vs a Linux bridge
  iputils-arping python3-scapy  # live suite: ARP probes, spoofed and rogue frames
  python3-cryptography  # the gateway tests sign JWTs (RS256, ES256) and publish their JWK Set
  netsniff-ng # trafgen: the packet-rate benchmark's generator
  openssl rsyslog rsyslog-openssl  # log shipping: test certificates; rsyslog with TLS both ways
  nginx-light dnsmasq-base bind9-dnsutils  # bench/ids_capture.sh: real HTTP/TLS and DNS servers, dig
  libnginx-mod-http-echo  # the gateway tests' upstream: nginx echoing what reached it
  wrk         # bench/gateway.sh: the gateway beside nginx as a TLS reverse proxy
  tcpreplay   # tcprewrite: the DDoS captures readdressed to the benign server they are mixed with
  hping3      # spoofed SYN floods against a protected endpoint
  chromium fonts-dejavu-core poppler-utils  # report --pdf: headless Chromium prints it, in the
                                            # page's font; pdftotext reads it back
)

missing=()
for p in "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#BUILD_PKGS[@]} build and ${#TEST_PKGS[@]} test packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
# iperf3 offers to run as a system daemon; the benchmark starts its own.
echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
