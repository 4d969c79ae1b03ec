// Shipper: sends a ChainLog's records (events/chain_log.h) to a collector as
// RFC 5424 syslog over TLS with RFC 5425 framing (syslog.h), in order.
//
// The log directory is the spool: records are durable there before they are
// shipped, so nothing needs a second copy while the collector is away. The
// shipper tails the files (following rotation), remembers in a state file
// the last record the collector acknowledged, and after any reconnect or
// restart resends from the one after it. A Palisade collector acknowledges
// what it has stored ("palisade-ack-v1 LOG_ID SEQ" frames back on the same
// connection) and drops resent records it already has, so across collector or
// shipper restarts nothing is lost and nothing is stored twice. A plain
// syslog receiver (rsyslog) sends no acknowledgements: with `acks` off the
// state advances once a record is written to the connection, so records in
// flight when that connection breaks can be lost (RFC 5425 has no
// acknowledgements; that is what RELP adds).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "core/time.h"
#include "events/chain_log.h"
#include "shipping/tls.h"

namespace palisade::shipping {

struct ShipperOptions {
  std::string log_dir;
  std::string host;
  uint16_t port = 6514;     // RFC 5425's port
  std::string server_name;  // the name the server's certificate must carry (default: host)
  TlsFiles tls;
  std::string state_file;  // default: LOG_DIR/ship-HOST-PORT.state; STATE.lock is held
                           // while shipping, so one shipper at a time uses a state
  bool acks = true;        // the receiver is a Palisade collector
  int facility = 16;       // local0
  std::string hostname;    // syslog HOSTNAME (default: this host's name)
  uint64_t window = 4096;  // records sent and not yet acknowledged, at most
  bool follow = true;      // false: return once everything is shipped
  int connect_timeout_ms = 5000;
  TimeNs retry_max_ns = 10'000'000'000ull;  // reconnect backoff ceiling
  TimeNs ack_warn_ns = 10'000'000'000ull;   // warn when no acknowledgement comes this long
  TimeNs poll_ns = 20'000'000ull;           // how often an idle shipper looks for new records
};

struct ShipperStats {
  std::atomic<uint64_t> records{0}, bytes{0}, acked_seq{0}, connects{0}, connect_failures{0},
      skipped_lines{0};
};

class Shipper {
 public:
  // Messages for the operator (connected, lost the connection, ...).
  using Notify = std::function<void(const std::string&)>;

  static Result<std::unique_ptr<Shipper>> create(ShipperOptions opts, Notify notify);
  ~Shipper();

  // Ships until `stop` is set (or, when not following, until every record is
  // shipped and acknowledged). Errors only for what retrying cannot mend.
  Status run(const std::atomic<bool>& stop);
  const ShipperStats& stats() const { return stats_; }
  // The last record shipped and acknowledged (or written, without acks).
  uint64_t shippedSeq() const { return acked_; }

 private:
  struct Tail;
  Shipper(ShipperOptions opts, TlsContext ctx, Notify notify);
  Status lockState();
  Status loadState();
  void saveState(bool force);
  Status session(const std::atomic<bool>& stop, bool& done);

  ShipperOptions opts_;
  TlsContext ctx_;
  Notify notify_;
  std::unique_ptr<Tail> tail_;
  ShipperStats stats_;
  std::string procid_;
  std::string log_id_;      // of the records at the cursor
  uint64_t acked_ = 0;      // acknowledged (or written, without acks)
  uint64_t saved_ = ~0ull;  // what the state file holds
  int lock_fd_ = -1;        // STATE.lock, flock()ed
  TimeNs saved_at_ = 0;
};

}  // namespace palisade::shipping
