// Collector: the central receiver for shipped logs (shipper.h) and for any
// RFC 5424 / RFC 5425 syslog sender (rsyslog).
//
// Hardened: TLS 1.2+ only, a client certificate that chains to the CA is
// required, a handshake must finish within a deadline, frames are bounded,
// connections are capped, and nothing a peer sends can make it throw.
//
// Palisade records (those with the [palisade@32473 log= seq=] element) are
// checked on arrival, per source (the client certificate's name and the
// log's id), with the same checks as `palisade log verify`: each record's
// hash, the link to the one before, the signed checkpoints (when the
// source's public key is known). They are stored as the source wrote them,
// one file per source file, so STORE/PEER/LOG_ID is itself a log that
// `palisade log verify` checks. Resent records already stored are dropped;
// what is stored is acknowledged once it is on disk. One connection sends a
// source's records at a time: a newer one takes the source over and the
// older one is closed, so two senders' records never interleave.
//
// Alarms (EVE JSON lines, event_type "alarm", to STORE/alarms.jsonl and
// stderr): feed_stopped when a source sends nothing for two and a half
// heartbeat intervals (learnt from its records), feed_resumed, chain_break (a record
// that does not verify, a gap, a resent record that differs), store_failed.
//
// Other syslog messages are stored per peer in STORE/PEER/syslog.log, one
// per line (newlines as #012, as rsyslog writes them).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "events/crypto.h"
#include "shipping/tls.h"

namespace palisade::shipping {

struct CollectorOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 6514;
  TlsFiles tls;
  std::string store;
  std::vector<events::SigningKey> keys;  // sources' public keys: checkpoints are verified
  size_t max_connections = 256;
  size_t max_frame = 256 << 10;
  int handshake_timeout_ms = 10000;
  TimeNs default_heartbeat_ns = 0;  // for sources that announce none (0: no feed alarm)
  TimeNs monitor_ns = 100'000'000ull;
  uint64_t max_syslog_file_bytes = 64ull << 20;  // syslog.log rotates to syslog.log.1
};

struct CollectorStats {
  std::atomic<uint64_t> connections{0}, handshake_failures{0}, rejected_connections{0}, records{0},
      duplicates{0}, syslog_messages{0}, malformed{0}, alarms{0}, bytes{0},
      superseded{0};  // connections closed because a newer one took their source
};

class Collector {
 public:
  static Result<std::unique_ptr<Collector>> create(CollectorOptions opts);
  ~Collector();
  // The address it listens on (the port is the real one when 0 was asked).
  uint16_t port() const;
  // Serves until `stop` is set, then closes every connection and returns.
  Status run(const std::atomic<bool>& stop);
  const CollectorStats& stats() const;

 private:
  struct Impl;
  explicit Collector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace palisade::shipping
