#include "cli/log_options.h"

#include <charconv>
#include <cstdio>

#include "core/strings.h"

namespace palisade::cli {

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
