// Traffic from anyone through the IDS: the first byte picks what is fuzzed.
//   0: HTTP, both directions, in pieces whose sizes come from the input
//   1: a DNS message      2: TLS records (ClientHello; the record walk)
//   3: Ethernet frames (2-byte length each) through a whole engine with rules
//      on every buffer, IDS mode, IP fragments reassembled; 4: the same,
//      inline with mid-stream pickup.
//   5: a compressed body (gzip, zlib or raw deflate) straight into the
//      inflater, in pieces, its output capped as the HTTP parser caps it.
// Nothing may crash, hang or grow without bound (the sanitizers and
// libFuzzer's -rss_limit_mb watch the last).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ids/applayer.h"
#include "ids/engine.h"
#include "ids/http.h"
#include "ids/inflate.h"
#include "ids/ruleset.h"
#include "packet/decoder.h"

namespace {

using namespace palisade;
using namespace palisade::ids;

const std::vector<Rule>& rules() {
  static const RuleSet set = [] {
    RuleSet s;
    addRules(s,
             "alert http any any -> any any (http.uri; content:\"/a\"; http.header; "
             "content:\"x\"; sid:1;)\n"
             "alert http any any -> any any (http.stat_code; content:\"200\"; file.data; "
             "content:\"z\"; pcre:\"/z+y/R\"; sid:2;)\n"
             "alert dns any any -> any any (dns.query; content:\"ex\"; sid:3;)\n"
             "alert tls any any -> any any (tls.sni; content:\"g\"; sid:4;)\n"
             "alert tcp any any -> any any (content:\"A\"; content:\"B\"; distance:0; "
             "byte_test:1,>,3,0,relative; flowbits:set,f; sid:5;)\n"
             "alert tcp any any -> any any (flowbits:isset,f; flags:A; threshold:type "
             "both,track by_src,count 2,seconds 10; sid:6;)\n"
             "alert udp any any -> any any (content:\"|00|\"; detection_filter:track by_dst, "
             "count 1, seconds 5, unique_on dst_port; sid:7;)\n"
             "alert ip any any -> any any (tag:host,3,packets,src; sid:8;)\n"
             "alert tcp any any -> any any (flags:S; tag:session,20,bytes; sid:9;)\n",
             "fuzz.rules", {});
    return s;
  }();
  return set.rules;
}

void engineRun(std::string_view in, bool inline_mode) {
  EngineConfig cfg;
  cfg.inline_mode = inline_mode;
  cfg.midstream = inline_mode;
  cfg.max_flows = 64;
  cfg.stream.out_of_order = 4096;
  cfg.defrag_limits.memcap = 1 << 16;  // IP reassembly stays within its cap
  cfg.defrag_limits.max_datagrams = 16;
  Engine e(rules(), cfg, [](const AlertInfo& a) {
    if (!a.rule) std::abort();
  });
  e.setTagSink([](const TaggedPacket& t) {
    if (!t.pkt) std::abort();
  });
  pkt::Decoder dec;
  pkt::Packet p;
  uint64_t n = 0;
  while (in.size() >= 2) {
    const size_t len = static_cast<uint8_t>(in[0]) << 8 | static_cast<uint8_t>(in[1]);
    in.remove_prefix(2);
    const std::string_view frame = in.substr(0, len);
    in.remove_prefix(frame.size());
    Bytes b(reinterpret_cast<const std::byte*>(frame.data()), frame.size());
    dec.decode(pkt::LinkType::Ethernet, b, static_cast<uint32_t>(frame.size()), p);
    ++n;
    e.packet(p, n * 100000000ull, n);
  }
  e.finish();
  if (e.flowCount() != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 6;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (mode) {
    case 0: {
      HttpLimits lim;
      lim.body = 4096;
      lim.line = 512;
      lim.headers = 2048;
      HttpParser p(lim);
      // The same pieces, and the same bytes one at a time, kept unreleased:
      // the parse must not depend on where the pieces split.
      HttpParser q(lim), r(lim);
      HttpCounters c, cq, cr;
      // Each piece: 1 byte (bit 7 the direction, the rest the size), then the bytes.
      while (!in.empty()) {
        const auto h = static_cast<uint8_t>(in[0]);
        in.remove_prefix(1);
        const std::string_view piece = in.substr(0, (h & 0x7f) + 1u);
        in.remove_prefix(piece.size());
        p.feed((h & 0x80) == 0, piece, c);
        q.feed((h & 0x80) == 0, piece, cq);
        for (size_t i = 0; i < piece.size(); ++i)
          r.feed((h & 0x80) == 0, piece.substr(i, 1), cr);
        for (HttpTx& t : p.transactions()) {
          if (t.request.body.size() > lim.body || t.response.body.size() > lim.body) std::abort();
          t.inspected_request = t.request.done;
          t.inspected_response = t.response.done;
        }
        p.release();
        if (p.transactions().size() > lim.transactions + 1) std::abort();
      }
      p.finish(c);
      q.finish(cq);
      r.finish(cr);
      if (q.transactions().size() != r.transactions().size()) std::abort();
      for (size_t i = 0; i < q.transactions().size(); ++i) {
        const HttpTx &a = q.transactions()[i], &b = r.transactions()[i];
        if (a.method != b.method || a.uri != b.uri || a.status != b.status) std::abort();
        for (auto m : {&HttpTx::request, &HttpTx::response}) {
          const HttpMessage &x = a.*m, &y = b.*m;
          // How much of a corrupt compressed body comes out before the
          // error depends on the pieces; everything else may not.
          const bool corrupt = cq.inflate_errors != 0 || cr.inflate_errors != 0;
          if ((x.body != y.body && !corrupt) || x.raw_headers != y.raw_headers ||
              x.done != y.done || x.headers.size() != y.headers.size())
            std::abort();
        }
      }
      (void)normalizeUri(std::string_view(reinterpret_cast<const char*>(data), size));
      break;
    }
    case 1: {
      DnsMessage m;
      if (parseDns(in, m))
        for (const std::string& q : m.queries)
          if (q.size() > 255) std::abort();
      break;
    }
    case 2: {
      TlsHello t;
      // In pieces of 7, as segments would bring it.
      for (size_t i = 0; i < in.size(); i += 7)
        t.feed(in.substr(i, 7));
      if (t.sni().size() > 65535) std::abort();
      // The record walk says the same whatever the pieces.
      TlsRecords whole, pieces;
      whole.feed(in);
      for (size_t i = 0; i < in.size(); i += 7)
        pieces.feed(in.substr(i, 7));
      if (whole.appData() != pieces.appData() || whole.failed() != pieces.failed()) std::abort();
      (void)detectTcp(in, true, 443);
      (void)detectTcp(in, false, 53);
      break;
    }
    case 5: {
      Inflater f(in.size() % 2 == 0);
      size_t kept = 0;
      Inflater::Result r = Inflater::Result::More;
      // Pieces of 1 to 64 bytes (the first byte of each says how many more).
      while (!in.empty() && r == Inflater::Result::More && kept < 65536) {
        const size_t n = (static_cast<uint8_t>(in[0]) & 63) + 1u;
        const std::string_view piece = in.substr(1, n);
        in.remove_prefix(std::min(in.size(), n + 1));
        r = f.feed(piece, [&](std::string_view out) {
          if (out.size() > 16384) std::abort();
          kept += out.size();
          return kept < 65536;
        });
      }
      break;
    }
    default:
      engineRun(in, mode == 4);
      break;
  }
  return 0;
}
