// palisade decode PCAP: one summary line per packet, then counts per protocol
// and per malformation, like tcpdump's output and tshark's -z io,phs.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

#include "cli/command.h"
#include "core/time.h"
#include "io/capture.h"
#include "io/replay.h"
#include "packet/decoder.h"
#include "packet/summary.h"

namespace palisade::cli {
namespace {

struct DecodeOptions {
  std::string path;
  uint64_t count = 0;
  bool quiet = false;
  bool json = false;
  uint16_t vxlan_port = 4789;
};

nlohmann::json statsJson(const pkt::DecodeStats& s) {
  nlohmann::json protocols = nlohmann::json::object(), errors = nlohmann::json::object();
  for (size_t i = 0; i < s.protocols.size(); ++i) {
    if (s.protocols[i])
      protocols[std::string(pkt::protoName(static_cast<pkt::Proto>(i)))] = s.protocols[i];
  }
  for (size_t i = 1; i < s.errors.size(); ++i) {
    if (s.errors[i])
      errors[std::string(pkt::errorName(static_cast<pkt::DecodeError>(i)))] = s.errors[i];
  }
  return {{"packets", s.packets},     {"bytes", s.bytes},
          {"malformed", s.malformed}, {"truncated_captures", s.truncated_captures},
          {"protocols", protocols},   {"errors", errors}};
}

void printStats(const char* title, const pkt::DecodeStats& s) {
  std::printf("%s: %llu packets, %llu bytes, %llu malformed, %llu truncated by the capture\n",
              title, static_cast<unsigned long long>(s.packets),
              static_cast<unsigned long long>(s.bytes),
              static_cast<unsigned long long>(s.malformed),
              static_cast<unsigned long long>(s.truncated_captures));
  std::printf("  %-18s %12s\n", "protocol", "packets");
  for (size_t i = 0; i < s.protocols.size(); ++i) {
    if (!s.protocols[i]) continue;
    std::printf("  %-18s %12llu\n", std::string(pkt::protoName(static_cast<pkt::Proto>(i))).c_str(),
                static_cast<unsigned long long>(s.protocols[i]));
  }
  if (s.malformed == 0) return;
  std::printf("  %-24s %8s  %s\n", "malformed", "packets", "meaning");
  for (size_t i = 1; i < s.errors.size(); ++i) {
    if (!s.errors[i]) continue;
    const auto e = static_cast<pkt::DecodeError>(i);
    std::printf("  %-24s %8llu  %s\n", std::string(pkt::errorName(e)).c_str(),
                static_cast<unsigned long long>(s.errors[i]),
                std::string(pkt::errorText(e)).c_str());
  }
}

int runDecode(const DecodeOptions& o) {
  auto reader = io::openCapture(o.path);
  if (!reader) {
    std::fprintf(stderr, "palisade decode: %s\n", reader.error().message.c_str());
    return kCannotRead;
  }
  pkt::Decoder decoder({.vxlan_port = o.vxlan_port});
  pkt::Decoder inner_decoder({.vxlan_port = o.vxlan_port});
  pkt::Packet pkt, inner;
  const bool lines = !o.quiet && !o.json;
  const bool show_iface = (*reader)->format() == io::CaptureFormat::Pcapng;
  std::string line;
  line.reserve(512);
  uint64_t n = 0;
  io::ReplayOptions ropt;
  ropt.max_packets = o.count;
  if (lines) ropt.progress = io::ReplayOptions::Progress::Never;  // lines show progress already
  auto result = io::replay(**reader, ropt, [&](const io::RawPacket& raw) {
    ++n;
    decoder.decode(raw.link, raw.data, raw.wire_len, pkt);
    // The inner frame is summarised even when it is malformed (the summary says so).
    const bool has_inner = pkt.has(pkt::kVxlan);
    if (has_inner) inner_decoder.decodeInner(pkt, inner);
    if (!lines) return;
    line.clear();
    char head[64];
    char tod[24];
    const size_t tlen = formatTimeOfDay(raw.ts_ns, tod);
    int h = show_iface
                ? std::snprintf(head, sizeof head, "%6llu %.*s if%u ",
                                static_cast<unsigned long long>(n), static_cast<int>(tlen), tod,
                                raw.interface_id)
                : std::snprintf(head, sizeof head, "%6llu %.*s ",
                                static_cast<unsigned long long>(n), static_cast<int>(tlen), tod);
    line.append(head, static_cast<size_t>(h));
    pkt::appendSummary(line, pkt, has_inner ? &inner : nullptr);
    if (!raw.comment.empty()) {
      line += "  # ";
      line += raw.comment;
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  });

  const pkt::DecodeStats& s = decoder.stats();
  if (o.json) {
    nlohmann::json j = statsJson(s);
    j["file"] = o.path;
    j["format"] = (*reader)->format() == io::CaptureFormat::Pcapng ? "pcapng" : "pcap";
    if (inner_decoder.stats().packets) j["vxlan_inner"] = statsJson(inner_decoder.stats());
    if (!result) j["error"] = result.error().message;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    if (lines) std::printf("\n");
    printStats(o.path.c_str(), s);
    if (inner_decoder.stats().packets) printStats("inside VXLAN", inner_decoder.stats());
    if (result) {
      const auto& r = *result;
      const double secs = static_cast<double>(r.wall_ns) / 1e9;
      std::printf("decoded in %.3f s (%.2f Mpps)\n", secs,
                  secs > 0 ? static_cast<double>(r.packets) / secs / 1e6 : 0.0);
    }
  }
  if (!result) {
    std::fprintf(stderr, "palisade decode: %s: %s (after %llu packets)\n", o.path.c_str(),
                 result.error().message.c_str(), static_cast<unsigned long long>(n));
    return kFindings;
  }
  return kOk;
}

}  // namespace

void registerDecode(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "decode", "Decode a pcap/pcapng capture: a line per packet, then protocol and error counts");
  cmd->footer(
      "Malformed packets are listed with their reason and counted, never fatal.\n"
      "Exit status: 0 read to the end, 1 the file is corrupt (counts cover what was read),\n"
      "3 unreadable.");
  auto o = std::make_shared<DecodeOptions>();
  cmd->add_option("PCAP", o->path, "Capture file (pcap or pcapng, by content)")->required();
  cmd->add_option("-c,--count", o->count, "Stop after this many packets");
  cmd->add_flag("-q,--quiet", o->quiet, "Only the counts, no per-packet lines");
  cmd->add_flag("--json", o->json, "Counts as JSON on stdout (implies --quiet)");
  cmd->add_option("--vxlan-port", o->vxlan_port, "UDP port carrying VXLAN")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->callback([o, &ctx] { ctx.exit_code = runDecode(*o); });
}

}  // namespace palisade::cli
