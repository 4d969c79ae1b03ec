#include "cli/log_options.h"

#include <charconv>
#include <cstdio>

#include "core/strings.h"

namespace palisade::cli {

namespace {

Result<uint64_t> parseScaled(std::string_view s, std::string_view what,
                             uint64_t (*unit)(char suffix)) {
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr == s.data()) {
    return makeError(strCat("'", std::string(s), "' is not a ", std::string(what)));
  }
  const std::string_view rest(r.ptr, static_cast<size_t>(s.data() + s.size() - r.ptr));
  uint64_t scale = 1;
  if (!rest.empty()) {
    scale = rest.size() == 1 ? unit(rest[0]) : 0;
    if (scale == 0) return makeError(strCat("'", std::string(s), "' is not a ", std::string(what)));
  }
  if (v > UINT64_MAX / scale) return makeError(strCat("'", std::string(s), "' is too large"));
  return v * scale;
}

}  // namespace

Result<uint64_t> parseSize(std::string_view s) {
  return parseScaled(s, "size (e.g. 64M)", [](char c) -> uint64_t {
    switch (c) {
      case 'K':
      case 'k':
        return 1ull << 10;
      case 'M':
      case 'm':
        return 1ull << 20;
      case 'G':
      case 'g':
        return 1ull << 30;
      case 'T':
      case 't':
        return 1ull << 40;
      default:
        return 0;
    }
  });
}

Result<TimeNs> parseDuration(std::string_view s) {
  return parseScaled(s, "duration (e.g. 30s, 15m, 24h, 30d)", [](char c) -> uint64_t {
    constexpr uint64_t kSec = 1'000'000'000ull;
    switch (c) {
      case 's':
        return kSec;
      case 'm':
        return 60 * kSec;
      case 'h':
        return 3600 * kSec;
      case 'd':
        return 86400 * kSec;
      default:
        return 0;
    }
  });
}

void LogArgs::addFlags(CLI::App* cmd) {
  cmd->add_option("--log-dir", dir,
                  "Write every event to a tamper-evident log here: hash-chained records, signed "
                  "checkpoints (see 'palisade log --help')");
  cmd->add_option("--log-key", key,
                  "Ed25519 private key that signs the log's checkpoints ('palisade log keygen'); "
                  "mode 600, outside --log-dir");
  cmd->add_option("--log-checkpoints", checkpoints,
                  "Also append every checkpoint to this file (keep it on other storage: it "
                  "shows a truncated log)");
  cmd->add_option("--log-rotate-size", rotate_size, "Start a new log file at this size (0: never)")
      ->capture_default_str();
  cmd->add_option("--log-rotate-age", rotate_age, "Start a new log file at this age (e.g. 24h)");
  cmd->add_option("--log-keep-files", keep_files, "Keep at most this many log files");
  cmd->add_option("--log-keep-size", keep_size,
                  "Keep at most this many bytes of log files (e.g. 10G)");
  cmd->add_option("--log-keep-age", keep_age, "Remove log files older than this (e.g. 90d)");
  cmd->add_option("--log-checkpoint-records", checkpoint_records,
                  "Sign a checkpoint after this many records")
      ->capture_default_str();
  cmd->add_option("--log-checkpoint-interval", checkpoint_interval,
                  "... or after this long, whichever comes first")
      ->capture_default_str();
  cmd->add_option("--log-heartbeat", heartbeat,
                  "Write a heartbeat record this often, so a collector can tell a quiet source "
                  "from a dead one (0: never)")
      ->capture_default_str();
}

Result<std::unique_ptr<events::ChainLog>> LogArgs::open(const std::string& host) const {
  if (key.empty())
    return makeError("--log-dir needs --log-key (make one with 'palisade log keygen')");
  if (Status st = events::checkKeyApart(key, dir); !st) return st.error();
  events::ChainLogOptions o;
  o.dir = dir;
  o.checkpoint_copy = checkpoints;
  o.host = host;
  if (checkpoint_records == 0) return makeError("--log-checkpoint-records must be at least 1");
  o.checkpoint_records = checkpoint_records;
  struct Limit {
    const char* flag;
    const std::string& text;
    bool is_size;
    uint64_t* out;
  };
  uint64_t interval = 0, age = 0, keep_bytes = 0, keep_age_ns = 0, rotate_bytes = 0, beat = 0;
  const Limit limits[] = {
      {"--log-checkpoint-interval", checkpoint_interval, false, &interval},
      {"--log-rotate-size", rotate_size, true, &rotate_bytes},
      {"--log-rotate-age", rotate_age, false, &age},
      {"--log-keep-size", keep_size, true, &keep_bytes},
      {"--log-keep-age", keep_age, false, &keep_age_ns},
      {"--log-heartbeat", heartbeat, false, &beat},
  };
  for (const Limit& l : limits) {
    if (l.text.empty()) continue;
    auto v = l.is_size ? parseSize(l.text) : parseDuration(l.text);
    if (!v) return makeError(strCat(l.flag, ": ", v.error().message));
    *l.out = *v;
  }
  if (interval == 0) return makeError("--log-checkpoint-interval must be more than 0");
  o.checkpoint_interval_ns = interval;
  o.max_file_bytes = rotate_bytes;
  o.max_file_age_ns = age;
  o.retain_files = keep_files;
  o.retain_bytes = keep_bytes;
  o.retain_age_ns = keep_age_ns;
  o.heartbeat_interval_ns = beat;
  auto k = events::SigningKey::loadPrivate(key);
  if (!k) return k.error();
  return events::ChainLog::open(std::move(o), std::move(*k));
}

std::unique_ptr<events::ChainLog> LogArgs::openFor(const std::string& host, const char* cmd,
                                                   Context& ctx) const {
  auto log = open(host);
  if (!log) {
    std::fprintf(stderr, "palisade %s: %s\n", cmd, log.error().message.c_str());
    ctx.exit_code = kCannotRead;
    return nullptr;
  }
  return std::move(*log);
}

}  // namespace palisade::cli
