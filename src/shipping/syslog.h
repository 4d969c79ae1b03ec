// Syslog on the wire: RFC 5424 messages, RFC 5425 / RFC 6587 framing, and
// the acknowledgement frames a Palisade collector sends back.
//
// A chained log record (events/chain_log.h) travels as
//   <PRI>1 TIMESTAMP HOST palisade PROCID MSGID [palisade@32473 log="ID" seq="N"] RECORD
// where TIMESTAMP is the record's own (UTC, microseconds), MSGID its
// event_type, and RECORD the record line byte for byte, so the receiver can
// check its hash. 32473 is the enterprise number RFC 5612 reserves for
// documentation; the SD-ID is Palisade's own, as RFC 5424 section 7.2 allows.
//
// Everything here parses bytes a remote peer chose: bounded, never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace palisade::shipping {

inline constexpr std::string_view kSdId = "palisade@32473";
inline constexpr std::string_view kAckPrefix = "palisade-ack-v1 ";

// Syslog severity (RFC 5424 table 2) of a record, from its event_type.
int severityOf(std::string_view event_type);

// The RFC 5424 message for one record line (without '\n'). `facility` is 0-23.
void formatRecordMessage(std::string_view record, std::string_view log_id, int facility,
                         std::string_view host, std::string_view procid, std::string& out);
// RFC 5425 framing: "LEN SP MSG".
void appendOctetCounted(std::string_view msg, std::string& out);

struct SdParam {
  std::string name, value;  // value unescaped
};
struct SdElement {
  std::string id;
  std::vector<SdParam> params;
};

struct SyslogMessage {
  int facility = -1, severity = -1;
  int version = 0;  // 1 for RFC 5424; 0 for a legacy (RFC 3164) message
  std::string_view timestamp, host, app, procid, msgid;  // "-" when nil
  std::vector<SdElement> sd;
  std::string_view msg;  // the rest (a UTF-8 BOM removed)
  // The value of `param` in the SD-ELEMENT `id`, or null.
  const std::string* sdParam(std::string_view id, std::string_view param) const;
};

// Parses an RFC 5424 message. A message that starts "<PRI>" but is not RFC
// 5424 is read as legacy (version 0, msg = everything after PRI). False with
// `why` when there is not even a PRI.
bool parseSyslog(std::string_view text, SyslogMessage& out, std::string& why);

// Splits a TCP byte stream into syslog messages. The framing is chosen by the
// stream's first byte, as rsyslog's imtcp does: a digit means RFC 5425
// octet counting ("LEN SP MSG"), '<' means RFC 6587 non-transparent framing
// (one message per line). A frame longer than max_frame, a malformed length or
// any other first byte is an error: the stream cannot be resynchronised.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame) : max_frame_(max_frame) {}
  // Appends bytes; then next() until it returns false.
  void feed(std::string_view bytes);
  // The next whole frame, valid until the next feed() or next().
  bool next(std::string_view& frame);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  enum class Mode { kUnknown, kOctet, kLine };
  size_t max_frame_;
  Mode mode_ = Mode::kUnknown;
  std::string buf_;
  size_t pos_ = 0;
  std::string error_;
};

// "palisade-ack-v1 LOG_ID SEQ": the collector has stored (durably) every
// record of LOG_ID up to SEQ.
std::string formatAck(std::string_view log_id, uint64_t seq);
bool parseAck(std::string_view frame, std::string& log_id, uint64_t& seq);

}  // namespace palisade::shipping
