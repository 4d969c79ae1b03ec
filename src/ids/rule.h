// One Suricata rule, parsed.
//
//   action proto src_addr src_port -> dst_addr dst_port (option; option: value; ...)
//
// The parser accepts the language the IDS engine inspects and refuses the rest
// with a one-line reason (an unsupported keyword, protocol or buffer, or a
// malformed value); loading a rule file goes on past a refused rule (see
// ruleset.h). Nothing here touches packets.
//
// Detection options become Matches on buffers. A sticky buffer keyword
// (http.uri;) sets the buffer for the options after it; a legacy modifier
// (content:"x"; http_uri;) moves the content before it to that buffer.
// Content modifiers (nocase, depth, offset, distance, within, startswith,
// endswith, fast_pattern) apply to the content before them; distance and
// within are relative to the previous match in the same buffer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "ids/addr.h"

struct pcre2_real_code_8;

namespace palisade::ids {

enum class Action : uint8_t { Alert, Drop, Reject, Pass };

// The header's protocol: what packets or transactions the rule looks at.
enum class Proto : uint8_t {
  Ip,         // any IP packet
  Tcp,        // TCP packets and the reassembled stream
  TcpPkt,     // TCP packets only
  TcpStream,  // the reassembled stream only
  Udp,
  Icmp,  // ICMP and ICMPv6
  Http,  // HTTP/1.x transactions, on any port
  Dns,   // DNS over UDP and TCP
  Tls,   // TLS handshakes (ClientHello)
};
std::string_view protoName(Proto p);

// What a content, pcre or byte test is matched against.
#define PALISADE_IDS_BUFFERS(X)                                 \
  X(Payload, "payload", "")                                     \
  X(HttpUri, "http.uri", "http_uri")                            \
  X(HttpUriRaw, "http.uri.raw", "http_raw_uri")                 \
  X(HttpMethod, "http.method", "http_method")                   \
  X(HttpHost, "http.host", "http_host")                         \
  X(HttpHostRaw, "http.host.raw", "http_raw_host")              \
  X(HttpUserAgent, "http.user_agent", "http_user_agent")        \
  X(HttpHeader, "http.header", "http_header")                   \
  X(HttpHeaderRaw, "http.header.raw", "http_raw_header")        \
  X(HttpHeaderNames, "http.header_names", "")                   \
  X(HttpCookie, "http.cookie", "http_cookie")                   \
  X(HttpRequestBody, "http.request_body", "http_client_body")   \
  X(HttpRequestLine, "http.request_line", "")                   \
  X(HttpStart, "http.start", "")                                \
  X(HttpProtocol, "http.protocol", "")                          \
  X(HttpContentType, "http.content_type", "http_content_type")  \
  X(HttpContentLen, "http.content_len", "")                     \
  X(HttpReferer, "http.referer", "")                            \
  X(HttpAccept, "http.accept", "")                              \
  X(HttpAcceptEnc, "http.accept_enc", "")                       \
  X(HttpAcceptLang, "http.accept_lang", "")                     \
  X(HttpConnection, "http.connection", "")                      \
  X(HttpStatCode, "http.stat_code", "http_stat_code")           \
  X(HttpStatMsg, "http.stat_msg", "http_stat_msg")              \
  X(HttpResponseLine, "http.response_line", "")                 \
  X(HttpLocation, "http.location", "")                          \
  X(HttpServer, "http.server", "")                              \
  X(HttpResponseBody, "http.response_body", "http_server_body") \
  X(FileData, "file.data", "file_data")                         \
  X(DnsQuery, "dns.query", "dns_query")                         \
  X(TlsSni, "tls.sni", "tls_sni")

enum class Buffer : uint8_t {
#define PALISADE_X(id, name, legacy) id,
  PALISADE_IDS_BUFFERS(PALISADE_X)
#undef PALISADE_X
};
constexpr size_t kBufferCount = 0
#define PALISADE_X(id, name, legacy) +1
    PALISADE_IDS_BUFFERS(PALISADE_X)
#undef PALISADE_X
    ;
std::string_view bufferName(Buffer b);
// The buffer's application protocol (Http, Dns, Tls), or Tcp for the payload.
Proto bufferProto(Buffer b);

// A number compared as in dsize, ttl, itype, urilen, bsize:
//   N  <N  >N  <=N  >=N  !N  N<>M (exclusive)  N-M (inclusive, ttl and friends)
struct NumberTest {
  enum class Op : uint8_t { Eq, Lt, Gt, Le, Ge, Ne, Between, Range } op = Op::Eq;
  uint64_t a = 0, b = 0;
  bool test(uint64_t v) const;
};

// A position that is a number or a byte_extract variable.
struct Operand {
  int64_t value = 0;
  int8_t var = -1;  // index into Rule::byte_vars, or -1
};

struct Content {
  std::string bytes;
  bool negated = false, nocase = false, startswith = false, endswith = false;
  bool fast_pattern = false, fast_pattern_only = false;
  std::optional<Operand> offset, depth, distance, within;
  bool relative() const { return distance || within; }
};

struct Pcre {
  std::string pattern;  // as written between the slashes
  std::string flags;    // i s m x A E G and the buffer letters, as written
  bool negated = false, relative = false;
  uint32_t options = 0;  // PCRE2 compile options
  // Compiled when the rule is parsed (so a bad pattern refuses the rule);
  // shared by copies of the rule.
  std::shared_ptr<pcre2_real_code_8> code;
};

struct ByteTest {
  uint8_t bytes = 1;  // 0 with string: the number is the rest of the buffer (http.content_len)
  enum class Op : uint8_t { Lt, Gt, Le, Ge, Eq, And, Or } op = Op::Eq;
  bool negated = false;
  Operand value, offset;
  bool relative = false, big_endian = true, string = false;
  uint8_t base = 10;  // with string: 8, 10 or 16
  uint64_t bitmask = 0;
};

struct ByteJump {
  uint8_t bytes = 1;
  Operand offset;
  bool relative = false, big_endian = true, string = false, align = false;
  bool from_beginning = false, from_end = false;
  uint8_t base = 10;
  uint32_t multiplier = 1;
  int32_t post_offset = 0;
  uint64_t bitmask = 0;
};

struct ByteExtract {
  uint8_t bytes = 1;
  int32_t offset = 0;
  bool relative = false, big_endian = true, string = false;
  uint8_t base = 10;
  uint32_t multiplier = 1, align = 0;
  int8_t var = 0;  // its index in Rule::byte_vars
};

struct IsDataAt {
  int32_t offset = 0;
  bool negated = false, relative = false;
};

// One detection step in a buffer, in the order written.
struct Match {
  enum class Kind : uint8_t { Content, Pcre, ByteTest, ByteJump, ByteExtract, IsDataAt, Bsize };
  Kind kind = Kind::Content;
  Buffer buffer = Buffer::Payload;
  // The buffer with a '.' put in front (the dotprefix transform): a separate
  // buffer for matching, as in Suricata, so "dotprefix; content:\".example.com\";
  // endswith;" matches example.com and its subdomains only.
  bool dotprefix = false;
  Content content;
  Pcre pcre;
  ByteTest byte_test;
  ByteJump byte_jump;
  ByteExtract byte_extract;
  IsDataAt isdataat;
  NumberTest bsize;
};

struct Flowbit {
  enum class Cmd : uint8_t { Set, Unset, Toggle, IsSet, IsNotSet, NoAlert } cmd = Cmd::Set;
  // Names; for isset/isnotset, several joined by '|' (any) or '&' (all).
  std::vector<std::string> names;
  bool any_of = false;
};

enum class Track : uint8_t { BySrc, ByDst, ByRule, ByBoth, ByFlow };

struct Threshold {
  enum class Type : uint8_t { Limit, Threshold, Both } type = Type::Limit;
  Track track = Track::BySrc;
  uint32_t count = 1, seconds = 1;
};

struct DetectionFilter {
  Track track = Track::BySrc;
  uint32_t count = 1, seconds = 1;
  // Suricata 8's "unique_on src_port|dst_port": count distinct ports only.
  enum class Unique : uint8_t { None, SrcPort, DstPort } unique = Unique::None;
};

struct Tag {
  enum class Scope : uint8_t { Session, Host } scope = Scope::Session;
  enum class Metric : uint8_t { Packets, Seconds, Bytes } metric = Metric::Packets;
  uint32_t count = 256;
  bool host_dst = false;  // host tags: which end (src by default)
};

struct FlowOpt {
  bool to_server = false, to_client = false;
  bool established = false, not_established = false, stateless = false;
  bool only_stream = false, no_stream = false;
};

// TCP flags: the bits that must be set, how the rest are judged.
struct FlagsTest {
  uint8_t bits = 0, mask = 0xff;  // bits of interest: the mask's zero bits are ignored
  enum class Mode : uint8_t { Exact, Plus, Any, Not } mode = Mode::Exact;
};

struct Rule {
  Action action = Action::Alert;
  Proto proto = Proto::Ip;
  IpSet src, dst;
  PortSet sport, dport;
  bool bidirectional = false;

  uint32_t gid = 1, sid = 0, rev = 0;
  std::string msg, classtype;
  uint8_t priority = 3;  // 1 high .. 255; from classtype unless set
  bool priority_set = false;
  std::vector<std::string> references;
  std::vector<std::pair<std::string, std::string>> metadata;
  enum class Target : uint8_t { None, Src, Dst } target = Target::None;

  std::vector<Match> matches;
  std::vector<std::string> byte_vars;  // byte_extract names, in order
  std::optional<FlowOpt> flow;
  std::vector<Flowbit> flowbits;
  bool noalert = false;
  std::optional<Threshold> threshold;
  std::optional<DetectionFilter> detection_filter;
  std::vector<Tag> tags;
  std::optional<NumberTest> dsize, ttl, itype, icode, urilen;
  bool urilen_raw = false;
  std::optional<uint16_t> icmp_id, icmp_seq;
  std::optional<FlagsTest> flags;

  // The application protocol its buffers need (Http, Dns, Tls), else its header's.
  Proto appProto() const;
  // "[gid:sid:rev]" as alerts name it.
  std::string id() const;
};

// classification.config: "config classification: name,description,priority".
struct ClassificationTable {
  struct Class {
    std::string description;
    uint8_t priority = 3;
  };
  std::map<std::string, Class, std::less<>> classes;
  // Lines that are not classifications are errors naming the line.
  static Result<ClassificationTable> parse(std::string_view text);
  static Result<ClassificationTable> load(const std::string& path);
};

// Parses one rule (comments and blank lines are the caller's). The error is one
// line: what was refused and why.
Result<Rule> parseRule(std::string_view text, const Vars& vars,
                       const ClassificationTable* classes = nullptr);

// Content text ("GET |20|/a\"b") to bytes; an error for a bad hex block or a
// stray quote or semicolon.
Result<std::string> parseContentBytes(std::string_view text);

}  // namespace palisade::ids
