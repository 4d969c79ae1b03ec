#include "ids/offline.h"

#include <chrono>

#include "core/hash.h"
#include "core/strings.h"
#include "ids/eve.h"
#include "io/capture.h"
#include "packet/decoder.h"

namespace palisade::ids {

Status prepareRules(const OfflineInput& in, PreparedRules& out) {
  LoadOptions opt;
  for (const std::string& s : in.sets)
    if (Status st = applySetting(out.cfg, opt.vars, s); !st) return st;
  if (!in.classification.empty()) {
    auto t = ClassificationTable::load(in.classification);
    if (!t) return t.error();
    out.classes = std::move(*t);
    out.has_classes = true;
    opt.classes = &out.classes;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (const std::string& f : in.rule_files)
    if (Status st = loadRuleFile(out.rules, f, opt); !st) return st;
  dropDuplicates(out.rules);
  out.digest = out.rules.digest;
  for (const std::string& s : in.sets)
    out.digest = hashBytes(s.data(), s.size(), out.digest);
  for (const auto& [name, c] : out.classes.classes) {
    out.digest = hashBytes(name.data(), name.size(), out.digest);
    out.digest = hashBytes(c.description.data(), c.description.size(), out.digest ^ c.priority);
  }
  out.load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return {};
}

Result<OfflineResult> runOffline(const OfflineInput& in,
                                 const std::function<void(std::string_view line)>& out) {
  OfflineResult res;
  PreparedRules prep;
  if (Status st = prepareRules(in, prep); !st) return st.error();
  EngineConfig cfg = prep.cfg;
  if (in.simulate_ips) {
    cfg.ips = true;
    cfg.inline_mode = true;
  }
  const ClassificationTable* classes = prep.has_classes ? &prep.classes : nullptr;
  res.rules = std::move(prep.rules);
  res.load_ms = prep.load_ms;
  const auto t1 = std::chrono::steady_clock::now();

  auto reader = io::openCapture(in.pcap);
  if (!reader) return reader.error();
  std::string line;
  Engine engine(res.rules.rules, cfg, [&](const AlertInfo& a) {
    line.clear();
    appendAlertJson(line, a, classes);
    out(line);
  });
  pkt::LinkType link = pkt::LinkType::Ethernet;
  if (in.eve_types) {
    engine.setEventSink([&](const AppEvent& e) {
      if (!(in.eve_types & (1u << static_cast<uint32_t>(e.kind)))) return;
      line.clear();
      appendEventJson(line, e);
      out(line);
    });
  }
  engine.setTagSink([&](const TaggedPacket& t) {
    line.clear();
    appendPacketJson(line, t, static_cast<uint32_t>(link));
    out(line);
  });
  const auto t2 = std::chrono::steady_clock::now();
  res.build_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  pkt::Decoder decoder;
  pkt::Packet p;
  io::RawPacket raw;
  auto last = std::chrono::steady_clock::now();
  while ((*reader)->next(raw)) {
    ++res.packets;
    res.bytes += raw.wire_len;
    link = raw.link;
    decoder.decode(raw.link, raw.data, raw.wire_len, p);
    engine.packet(p, raw.ts_ns, res.packets);
    if (in.progress && (res.packets & 0xfff) == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last > std::chrono::seconds(1)) {
        last = now;
        in.progress((*reader)->position(), (*reader)->size());
      }
    }
  }
  if ((*reader)->error()) res.read_error = (*reader)->error()->message;
  engine.finish();
  res.run_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t2).count();
  res.stats = engine.stats();
  if (in.profile_rules) res.profile = engine.ruleProfile(in.profile_rules);
  return res;
}

Result<uint32_t> parseEveTypes(std::string_view list) {
  uint32_t bits = 0;
  size_t at = 0;
  while (at <= list.size()) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string_view t = trim(list.substr(at, comma - at));
    at = comma + 1;
    if (t.empty() || t == "alert" || t == "packet") continue;
    if (t == "http") {
      bits |= kEveHttp;
    } else if (t == "dns") {
      bits |= kEveDns;
    } else if (t == "tls") {
      bits |= kEveTls;
    } else if (t == "flow") {
      bits |= kEveFlow;
    } else {
      return makeError(strCat("unknown EVE event type '", std::string(t),
                              "' (known: alert, http, dns, tls, flow)"));
    }
  }
  return bits;
}

}  // namespace palisade::ids
