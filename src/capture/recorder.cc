#include "capture/recorder.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/strings.h"

namespace palisade::capture {

using pipeline::kNoIndex;

struct Recorder::Rule {
  const policy::CaptureRule* source = nullptr;
  uint32_t tenant = kNoIndex;  // model tenant index
  uint32_t nic = kNoIndex;     // compiled NIC index
  std::vector<bool> rules;     // per RuleInfo: selected (empty: any)
  pipeline::Reason reason = pipeline::Reason::None;
  bool attack = false;                       // packets of an attack under way ...
  ddos::Vector vector = ddos::Vector::None;  // ... of this vector (None: any)
  std::optional<uint32_t> alert;             // IDS alerts: 0 any, else this sid
  policy::CaptureDecision decision = policy::CaptureDecision::Any;
  std::unique_ptr<io::PacketWriter> out;
  std::string path;               // of the open file
  TimeNs opened = 0;              // packet time of its first packet
  uint64_t size = 0;              // bytes written to it (its blocks, counted as written)
  uint64_t seq = 0;               // files opened by this run
  std::deque<std::string> files;  // this rule's files, oldest first (earlier runs' too)
  bool failed = false;            // opening or writing failed: nothing until retry_at
  TimeNs retry_at = 0;
};

namespace {

// The tenant a rule belongs to: the part of its group before '/', when that is
// a tenant ("perimeter" is not).
uint32_t tenantOfGroup(const policy::Policy& p, const std::string& group) {
  const size_t slash = group.find('/');
  if (slash == std::string::npos) return kNoIndex;
  const std::string_view t(group.data(), slash);
  for (size_t i = 0; i < p.tenants.size(); ++i)
    if (p.tenants[i].name == t) return static_cast<uint32_t>(i);
  return kNoIndex;
}

// Bytes an enhanced packet block with this capture length and comment takes.
uint64_t blockSize(size_t caplen, size_t comment) {
  auto pad = [](size_t n) { return (n + 3) & ~size_t{3}; };
  return 32 + pad(caplen) + (comment ? 4 + pad(comment) + 4 : 0);
}

}  // namespace

Result<std::unique_ptr<Recorder>> Recorder::create(
    std::shared_ptr<const pipeline::CompiledPolicy> policy, std::string dir, std::string instance) {
  std::unique_ptr<Recorder> r(new Recorder());
  const policy::Policy& model = *policy->model;
  const policy::CaptureSettings& c = model.capture;
  if (c.file_size) r->limits_.file_size = *c.file_size;
  if (c.file_seconds) r->limits_.file_seconds = *c.file_seconds;
  if (c.max_files) r->limits_.max_files = *c.max_files;
  if (c.snaplen) r->limits_.snaplen = *c.snaplen;
  for (const pipeline::PortInfo& p : policy->ports) {
    io::InterfaceInfo i;
    i.name = p.name;
    i.snaplen = r->limits_.snaplen;
    i.description = p.nic == kNoIndex ? "uplink: Internet, on-premises, VXLAN to other hosts"
                                      : strCat("NIC port of ", p.name);
    r->interfaces_.push_back(std::move(i));
  }
  r->rule_tenant_.reserve(policy->rules.size());
  for (const pipeline::RuleInfo& ri : policy->rules)
    r->rule_tenant_.push_back(tenantOfGroup(model, ri.group));

  std::vector<std::string> errors;
  auto where = [&](const policy::CaptureRule& cr) {
    return strCat(model.source, ":", std::to_string(cr.loc.line), ": capture rule '", cr.name, "'");
  };
  for (const policy::CaptureRule& cr : c.rules) {
    auto rule = std::make_unique<Rule>();
    rule->source = &cr;
    rule->decision = cr.decision;
    if (!cr.tenant.empty())
      for (size_t i = 0; i < model.tenants.size(); ++i)
        if (model.tenants[i].name == cr.tenant) rule->tenant = static_cast<uint32_t>(i);
    if (!cr.nic.empty())
      for (size_t i = 0; i < policy->nics.size(); ++i)
        if (policy->nics[i].name == cr.nic) rule->nic = static_cast<uint32_t>(i);
    if ((!cr.tenant.empty() && rule->tenant == kNoIndex) ||
        (!cr.nic.empty() && rule->nic == kNoIndex))
      errors.push_back(strCat(where(cr), ": its tenant or NIC is not in the policy"));
    if (!cr.rule.empty()) {
      // A qualified rule name, or a group (every rule of it), or "perimeter".
      rule->rules.assign(policy->rules.size(), false);
      bool any = false;
      std::vector<std::string_view> names;
      for (size_t i = 0; i < policy->rules.size(); ++i) {
        const pipeline::RuleInfo& ri = policy->rules[i];
        if (ri.name == cr.rule || ri.group == cr.rule) {
          rule->rules[i] = true;
          any = true;
        }
        names.push_back(ri.name);
      }
      if (!any) {
        std::string msg = strCat(where(cr), ": no rule or group '", printable(cr.rule),
                                 "' in the policy (qualified: perimeter/NAME, TENANT/GROUP/NAME, "
                                 "or a group TENANT/GROUP)");
        if (auto guess = closestMatch(cr.rule, names); !guess.empty())
          msg += strCat("; did you mean '", guess, "'?");
        errors.push_back(std::move(msg));
      }
    }
    if (!cr.reason.empty()) {
      rule->reason = pipeline::reasonByName(cr.reason);
      if (rule->reason == pipeline::Reason::None) {
        std::vector<std::string> known;
        for (size_t i = 1; i < static_cast<size_t>(pipeline::Reason::Count); ++i)
          known.push_back(pipeline::toString(static_cast<pipeline::Reason>(i)));
        errors.push_back(strCat(where(cr), ": unknown drop reason '", printable(cr.reason),
                                "'; known: ", join(known, ", ")));
      } else if (cr.decision == policy::CaptureDecision::Allow) {
        errors.push_back(strCat(where(cr), ": a drop reason and decision 'allow' never match"));
      }
    }
    if (!cr.attack.empty()) {
      rule->attack = true;
      if (cr.attack != "any") {
        std::vector<std::string> known{"any"};
        for (size_t i = 0; i < ddos::kVectorCount; ++i) {
          const auto v = static_cast<ddos::Vector>(i);
          known.emplace_back(ddos::vectorName(v));
          if (ddos::vectorName(v) == cr.attack) rule->vector = v;
        }
        if (rule->vector == ddos::Vector::None)
          errors.push_back(strCat(where(cr), ": unknown attack vector '", printable(cr.attack),
                                  "'; known: ", join(known, ", ")));
      }
      if (!policy->model || policy->model->ddos.protect.empty())
        errors.push_back(strCat(where(cr),
                                ": capture by attack needs a ddos section that protects "
                                "something (no address is watched for attacks)"));
    }
    rule->alert = cr.alert;
    if (cr.alert && !policy->ids_rules)
      errors.push_back(
          strCat(where(cr), ": capture by alert needs the policy's ids section and its rules"));
    r->rules_.push_back(std::move(rule));
    RuleStats st;
    st.name = cr.name;
    r->stats_.push_back(std::move(st));
  }
  if (!errors.empty()) return makeError(join(errors, "\n"));

  // Each rule's directory, and the files earlier runs left in it (the ring
  // counts them: max_files bounds the disk whatever the restarts).
  r->dir_ = std::move(dir);
  r->instance_ = std::move(instance);
  r->policy_ = std::move(policy);
  for (auto& rule : r->rules_) {
    const std::string d = strCat(r->dir_, "/", rule->source->name);
    std::error_code ec;
    std::filesystem::create_directories(d, ec);
    if (ec) return makeError(strCat(d, ": ", ec.message()));
    std::vector<std::string> old;
    // With instances (workers), each keeps its own ring: max_files per worker.
    const std::string mine = r->instance_.empty() ? std::string() : strCat("-", r->instance_, "-");
    for (const auto& e : std::filesystem::directory_iterator(d, ec))
      if (e.path().extension() == ".pcapng" &&
          (mine.empty() || e.path().filename().string().find(mine) != std::string::npos))
        old.push_back(e.path().string());
    if (ec) return makeError(strCat(d, ": ", ec.message()));
    std::sort(old.begin(), old.end());  // the names sort by time
    rule->files.assign(old.begin(), old.end());
  }
  return r;
}

const Recorder::Addressed& Recorder::addressed(uint16_t in_port, Bytes frame, uint32_t wire_len) {
  if (addressed_.done) return addressed_;
  addressed_.done = true;
  const pipeline::CompiledPolicy& p = *policy_;
  decoder_.decode(pkt::LinkType::Ethernet, frame, wire_len, decoded_);
  if (!decoded_.has(pkt::kIpv4) && !decoded_.has(pkt::kIpv6)) return addressed_;
  const uint32_t in_nic = in_port < p.ports.size() ? p.ports[in_port].nic : kNoIndex;
  if (in_nic < p.nics.size()) {
    const uint32_t n = p.nicByAddress(p.nics[in_nic].vnet, decoded_.dst);
    if (n < p.nics.size()) addressed_.dst_nic = n;
  } else {
    const uint32_t d = p.deploymentByVip(decoded_.dst);
    if (d < p.deployments.size() && p.deployments[d].vnet < p.vnets.size())
      addressed_.vip_tenant = p.vnets[p.deployments[d].vnet].tenant;
  }
  return addressed_;
}

bool Recorder::matches(const Rule& r, const pipeline::Pipeline& pl, uint16_t in_port, Bytes frame,
                       uint32_t wire_len, const pipeline::Verdict& v) {
  using policy::CaptureDecision;
  const pipeline::CompiledPolicy& p = *policy_;
  // A held fragment is offered again when released, with what became of it.
  if (v.action == pipeline::Action::Hold) return false;
  if (r.decision == CaptureDecision::Allow && v.action != pipeline::Action::Forward) return false;
  if (r.decision == CaptureDecision::Deny && v.action != pipeline::Action::Drop) return false;
  if (r.reason != pipeline::Reason::None && v.reason != r.reason) return false;
  if (r.attack && (!v.ddos_attack || v.ddos_vector == ddos::Vector::None ||
                   (r.vector != ddos::Vector::None && v.ddos_vector != r.vector)))
    return false;
  // An alert on this packet, or earlier in its flow (the flow's first alert's sid).
  if (r.alert && (v.ids_sid == 0 || (*r.alert != 0 && v.ids_sid != *r.alert))) return false;
  if ((r.nic != kNoIndex || r.tenant != kNoIndex) && v.flow_action == kNoIndex) {
    // No flow says which NICs it concerns (a refused first packet): its addresses do.
    addressed(in_port, frame, wire_len);
  }
  // The NICs the packet concerns: where it came in, where it goes, its flow's.
  const pipeline::FlowAction* a = v.flow_action != kNoIndex && v.flow_action < pl.actionCount()
                                      ? &pl.action(v.flow_action)
                                      : nullptr;
  uint32_t nics[4] = {in_port < p.ports.size() ? p.ports[in_port].nic : kNoIndex,
                      v.action == pipeline::Action::Forward && v.out_port < p.ports.size()
                          ? p.ports[v.out_port].nic
                          : kNoIndex,
                      a ? a->nic : kNoIndex, addressed_.dst_nic};
  for (uint32_t& n : nics)
    if (n >= p.nics.size()) n = kNoIndex;
  if (r.nic != kNoIndex && std::find(std::begin(nics), std::end(nics), r.nic) == std::end(nics))
    return false;
  if (r.tenant != kNoIndex) {
    bool hit = v.rule < rule_tenant_.size() && rule_tenant_[v.rule] == r.tenant;
    for (uint32_t n : nics)
      hit |= n != kNoIndex && p.nics[n].tenant == r.tenant;
    // From the Internet to a deployment's public address: that deployment's tenant.
    hit |= addressed_.vip_tenant == r.tenant;
    if (!hit) return false;
  }
  if (!r.rules.empty()) {
    bool hit = v.rule < r.rules.size() && r.rules[v.rule];
    if (a && a->rules.size() && !hit)
      for (uint32_t ri : a->rules)
        hit |= ri < r.rules.size() && r.rules[ri];
    if (!hit) return false;
  }
  return true;
}

std::string Recorder::comment(const pipeline::Pipeline& pl, uint16_t in_port,
                              const pipeline::Verdict& v) const {
  const pipeline::CompiledPolicy& p = *policy_;
  auto port = [&](uint16_t i) { return i < p.ports.size() ? p.ports[i].name : std::string("?"); };
  std::string c;
  switch (v.action) {
    case pipeline::Action::Forward: {
      c = strCat("forwarded ", port(in_port), " -> ", port(v.out_port));
      if (v.flow_action != kNoIndex && v.flow_action < pl.actionCount()) {
        const pipeline::FlowAction& a = pl.action(v.flow_action);
        std::vector<std::string> rules;
        for (size_t l = 0; l < a.rules.size(); ++l)
          if (a.rules[l] < p.rules.size())
            rules.push_back(strCat(pipeline::toString(static_cast<pipeline::Layer>(l)), " ",
                                   p.rules[a.rules[l]].name));
        if (a.endpoint < p.endpoints.size())
          rules.push_back(strCat("endpoint ", p.endpoints[a.endpoint].name));
        if (!rules.empty()) c += strCat("; ", join(rules, ", "));
      }
      break;
    }
    case pipeline::Action::Drop:
      c = strCat("dropped on ", port(in_port), ": ", pipeline::toString(v.reason), " (",
                 pipeline::toString(pipeline::layerOf(v.reason)),
                 " layer: ", pipeline::describe(v.reason), ")");
      if (v.rule < p.rules.size()) c += strCat(" by rule ", p.rules[v.rule].name);
      break;
    case pipeline::Action::Answer:
      c = strCat("answered by the switch on ", port(in_port));
      break;
    case pipeline::Action::Hold:
      c = strCat("held on ", port(in_port), " for its datagram's first fragment");
      break;
  }
  if (v.ddos_attack && v.ddos_vector != ddos::Vector::None)
    c += strCat("; DDoS: ", ddos::vectorName(v.ddos_vector), " during an attack");
  if (v.ids_sid)
    c += strCat(v.ids_alert ? "; IDS alert sid " : "; in a flow with IDS alert sid ",
                std::to_string(v.ids_sid));
  return c;
}

Status Recorder::rotate(Rule& r, RuleStats& st, TimeNs ts) {
  if (r.out) {
    const Status s = r.out->close();
    r.out.reset();
    if (!s) return s;
  }
  // The ring: room for the new file.
  while (r.files.size() >= limits_.max_files) {
    std::error_code ec;
    std::filesystem::remove(r.files.front(), ec);
    r.files.pop_front();
    ++st.deleted;
  }
  const auto secs = static_cast<time_t>(ts / 1000000000ull);
  tm parts{};
  gmtime_r(&secs, &parts);
  char stamp[80];
  std::snprintf(stamp, sizeof stamp, "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
  char seq[16];
  std::snprintf(seq, sizeof seq, "%06llu", static_cast<unsigned long long>(++r.seq));
  const std::string& name = r.source->name;
  r.path = strCat(dir_, "/", name, "/", name, "-", stamp, instance_.empty() ? "" : "-", instance_,
                  "-", seq, ".pcapng");
  auto w = io::createCapture(r.path, io::CaptureFormat::Pcapng, interfaces_);
  if (!w) return w.error();
  r.out = std::move(*w);
  r.files.push_back(r.path);
  r.opened = ts;
  r.size = 0;
  r.failed = false;
  ++st.files;
  return {};
}

void Recorder::offer(const pipeline::Pipeline& pl, uint16_t in_port, Bytes frame, uint32_t wire_len,
                     TimeNs ts, const pipeline::Verdict& v) {
  addressed_ = {};
  std::string note;
  for (size_t i = 0; i < rules_.size(); ++i) {
    Rule& r = *rules_[i];
    if (!matches(r, pl, in_port, frame, wire_len, v)) continue;
    RuleStats& st = stats_[i];
    if (note.empty()) note = comment(pl, in_port, v);
    const size_t caplen = std::min<size_t>(frame.size(), limits_.snaplen);
    const uint64_t block = blockSize(caplen, note.size());
    const TimeNs span = limits_.file_seconds * 1000000000ull;
    const bool due = r.failed ? ts >= r.retry_at
                              : !r.out || ts >= r.opened + span ||
                                    (r.size > 0 && r.size + block > limits_.file_size);
    if (due) {
      if (Status s = rotate(r, st, ts); !s) {
        if (st.last_error.empty())
          std::fprintf(stderr,
                       "palisade: capture rule '%s': %s (its packets are dropped, counted, "
                       "until a new file opens)\n",
                       r.source->name.c_str(), s.error().message.c_str());
        st.last_error = s.error().message;
        r.failed = true;
        r.retry_at = ts + std::min<TimeNs>(span, 60ull * 1000000000ull);
      }
    }
    if (!r.out || r.failed) {
      ++st.dropped;
      continue;
    }
    io::RawPacket p;
    p.data = frame.first(caplen);
    p.ts_ns = ts;
    p.wire_len = std::max<uint32_t>(wire_len, static_cast<uint32_t>(frame.size()));
    p.interface_id = in_port < interfaces_.size() ? in_port : 0;
    p.link = pkt::LinkType::Ethernet;
    p.comment = note;
    if (Status s = r.out->write(p); !s) {
      if (st.last_error.empty())
        std::fprintf(stderr, "palisade: capture rule '%s': %s\n", r.source->name.c_str(),
                     s.error().message.c_str());
      st.last_error = s.error().message;
      r.failed = true;
      r.retry_at =
          ts + std::min<TimeNs>(limits_.file_seconds * 1000000000ull, 60ull * 1000000000ull);
      ++st.dropped;
      continue;
    }
    r.size += block;
    ++st.packets;
    st.bytes += caplen;
  }
}

Recorder::~Recorder() {
  (void)close();
}

Status Recorder::close() {
  Status first;
  for (auto& r : rules_) {
    if (!r->out) continue;
    Status s = r->out->close();
    r->out.reset();
    if (!s && first) first = s;
  }
  return first;
}

}  // namespace palisade::capture
