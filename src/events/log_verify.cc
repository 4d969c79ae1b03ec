#include "events/log_verify.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "events/json_fields.h"

namespace palisade::events {

namespace fs = std::filesystem;

namespace {

constexpr Digest kZero{};

std::string seqRange(uint64_t from, uint64_t to) {
  return from == to ? strCat("record ", std::to_string(from))
                    : strCat("records ", std::to_string(from), "-", std::to_string(to));
}

// "record 7 is missing", "records 7-9 are missing".
std::string seqRange(uint64_t from, uint64_t to, std::string_view one, std::string_view many,
                     std::string_view rest) {
  return strCat(seqRange(from, to), " ", from == to ? one : many, rest);
}

// A checkpoint's fields, when the line is one.
struct Checkpoint {
  std::string log_id, key_id, sig, signed_hash;
  uint64_t signed_seq = 0;
  bool final_checkpoint = false;
};

bool parseCheckpoint(const nlohmann::json& log, Checkpoint& c) {
  c.log_id = jf::str(log, "log_id");
  c.key_id = jf::str(log, "key_id");
  c.sig = jf::str(log, "sig");
  c.signed_hash = jf::str(log, "signed_hash");
  c.signed_seq = jf::u64(log, "signed_seq");
  c.final_checkpoint = jf::boolean(log, "final");
  return !c.log_id.empty() && !c.key_id.empty() && !c.sig.empty() && !c.signed_hash.empty() &&
         c.signed_seq != 0;
}

std::string checkpointMessage(const Checkpoint& c) {
  return strCat("palisade-log-checkpoint-v1 ", c.log_id, " ", std::to_string(c.signed_seq), " ",
                c.signed_hash);
}

}  // namespace

void LogVerifier::problem(std::string kind, const std::string& where, uint64_t seq,
                          std::string detail) {
  if (r_.problems.size() >= kMaxFindings) {
    ++r_.problems_not_listed;
    return;
  }
  r_.problems.push_back({std::move(kind), where, seq, std::move(detail)});
}

std::string LogVerifier::at(Loc l) const {
  return strCat(l.file < files_.size() ? files_[l.file] : std::string("?"), ":",
                std::to_string(l.line));
}

std::string LogVerifier::here() const {
  return at(loc());
}

void LogVerifier::checkpointCopy(std::string_view line, uint64_t line_no) {
  const std::string where = strCat("checkpoint copy:", std::to_string(line_no));
  if (line.empty()) return;
  RecordTail t;
  auto j = nlohmann::json::parse(line, nullptr, false);
  Checkpoint c;
  if (!parseRecordTail(line, t) || j.is_discarded() ||
      jf::str(jf::object(j, "log"), "event") != "checkpoint" ||
      !parseCheckpoint(jf::object(j, "log"), c)) {
    problem("malformed", where, 0, "not a checkpoint record");
    return;
  }
  Digest h{};
  if (!fromHex(c.signed_hash, h.data(), h.size())) {
    problem("malformed", where, t.seq, "signed_hash is not 64 hex digits");
    return;
  }
  copy_[c.signed_seq] = h;
}

void LogVerifier::beginFile(std::string name, bool at_file_start) {
  files_.push_back(std::move(name));
  line_no_ = 0;
  first_in_file_ = at_file_start;
  ++r_.files;
}

void LogVerifier::endFile(uint64_t partial_tail_bytes) {
  if (partial_tail_bytes > 0) {
    if (!partial_file_.empty()) {
      problem("truncated", partial_file_, 0,
              strCat("the file ends in an incomplete record (", std::to_string(partial_bytes_),
                     " bytes) that no resume accounts for"));
    }
    partial_file_ = files_.back();
    partial_bytes_ = partial_tail_bytes;
  }
}

void LogVerifier::remember(uint64_t seq, const RecordTail& t) {
  window_[seq].push_back({t.hash, t.prev, loc(), false});
  while (window_.size() > kWindow) {
    auto oldest = window_.begin();
    if (oldest->second.size() > 1) {
      // Several records claimed this number and no successor chose between them.
      size_t linked = 0;
      for (const Entry& e : oldest->second)
        linked += e.linked;
      for (const Entry& e : oldest->second) {
        if (!e.linked && linked == 1) {
          problem("inserted", at(e.where), oldest->first,
                  "a second record with this sequence number; the chain continues from the other");
        }
      }
    }
    window_.erase(oldest);
  }
}

// The record with `seq` and `hash` is named as prev by its successor: it is the
// chain's; any other record claiming `seq` is not.
void LogVerifier::linkTo(uint64_t seq, const Digest& hash) {
  auto it = window_.find(seq);
  if (it == window_.end()) return;
  for (Entry& e : it->second) {
    if (e.hash == hash) e.linked = true;
  }
  if (it->second.size() < 2) return;
  bool any = false;
  for (const Entry& e : it->second)
    any |= e.linked;
  if (!any) return;
  std::vector<Entry> keep;
  for (Entry& e : it->second) {
    if (e.linked) {
      keep.push_back(std::move(e));
    } else {
      problem("inserted", at(e.where), seq,
              "not part of the chain: another record holds this sequence number and the next "
              "record links to that one");
    }
  }
  it->second = std::move(keep);
}

void LogVerifier::addMissing(uint64_t from, uint64_t to, std::string where) {
  if (missing_.size() >= 100000) {
    missing_dropped_ += to - from + 1;
    return;
  }
  missing_[from] = {to, std::move(where)};
}

bool LogVerifier::takeMissing(uint64_t seq) {
  auto it = missing_.upper_bound(seq);
  if (it == missing_.begin()) return false;
  --it;
  const uint64_t start = it->first;
  Pending gap = it->second;
  if (seq > gap.end) return false;
  missing_.erase(it);
  if (start < seq) missing_[start] = {seq - 1, gap.where};
  if (seq < gap.end) missing_[seq + 1] = {gap.end, gap.where};
  return true;
}

void LogVerifier::overlongLine() {
  ++line_no_;
  first_in_file_ = false;
  problem("malformed", here(), 0, "a line longer than 1 MiB: not a log record");
}

void LogVerifier::line(std::string_view text) {
  ++line_no_;
  const bool first_in_file = first_in_file_;
  first_in_file_ = false;
  RecordTail t;
  if (!parseRecordTail(text, t)) {
    problem("malformed", here(), 0, "not a chained log record");
    return;
  }
  ++r_.records;
  if (r_.first_seq == 0 || t.seq < r_.first_seq) r_.first_seq = t.seq;
  const bool content_ok = sha_(text.substr(0, t.body_len)) == t.hash;
  if (!content_ok) {
    problem("modified", here(), t.seq, "the record's content does not match its hash");
  }
  if (first_in_file && text.find("\"event\":\"file\"") == std::string_view::npos) {
    problem("malformed", here(), t.seq, "the file does not begin with a file record");
  }
  // After a final checkpoint only a resume may follow: at a file's start in
  // the writer's own files, anywhere in a stream that joined them (syslog).
  if (after_final_ && (text.find("\"event\":\"file\"") == std::string_view::npos ||
                       text.find("\"reason\":\"resume\"") == std::string_view::npos)) {
    problem("malformed", here(), t.seq,
            "a record after the log was closed by its final checkpoint");
  }
  after_final_ = false;

  bool extends = false;  // whether this record becomes the chain's newest
  if (!last_.valid) {
    extends = true;
    if (t.seq == 1) {
      if (t.prev != kZero) problem("modified", here(), 1, "the first record's prev is not zero");
    } else {
      head_gap_ = true;
      head_seq_ = t.seq;
      head_prev_ = t.prev;
      head_where_ = here();
    }
  } else if (t.seq == last_.seq + 1) {
    extends = true;
    if (t.prev == last_.hash) {
      linkTo(last_.seq, t.prev);
    } else {
      bool other = false;
      if (auto it = window_.find(last_.seq); it != window_.end()) {
        for (const Entry& e : it->second)
          other |= e.hash == t.prev;
      }
      if (other) {
        linkTo(last_.seq, t.prev);  // reports the record that is not the chain's
      } else if (last_.content_ok) {
        problem("modified", at(last_.where), last_.seq,
                strCat("the record was altered and its hash recomputed: the next record (", here(),
                       ") names a different prev"));
      }
    }
  } else if (t.seq > last_.seq + 1) {
    extends = true;
    if (t.prev == last_.hash) {
      problem("modified", here(), t.seq,
              strCat("the sequence number was changed: it links to record ",
                     std::to_string(last_.seq), " but skips ", seqRange(last_.seq + 1, t.seq - 1)));
    } else {
      addMissing(last_.seq + 1, t.seq - 1, strCat("between ", at(last_.where), " and ", here()));
    }
  } else {
    // An older sequence number: moved, copied or forged.
    if (takeMissing(t.seq)) {
      problem("reordered", here(), t.seq,
              strCat("found after record ", std::to_string(last_.seq), " (", at(last_.where), ")"));
      if (auto it = window_.find(t.seq - 1); it != window_.end()) linkTo(t.seq - 1, t.prev);
      remember(t.seq, t);
    } else if (auto it = window_.find(t.seq); it != window_.end()) {
      const Entry* same = nullptr;
      for (const Entry& e : it->second) {
        if (e.hash == t.hash) same = &e;
      }
      if (same) {
        problem("inserted", here(), t.seq, strCat("a copy of the record at ", at(same->where)));
      } else {
        remember(t.seq, t);
        // Settled now if the successor already chose, else when it comes.
        if (auto next = window_.find(t.seq + 1); next != window_.end()) {
          for (const Entry& e : next->second)
            linkTo(t.seq, e.prev);
        }
      }
    } else {
      problem("reordered", here(), t.seq,
              strCat("found after record ", std::to_string(last_.seq), " (", at(last_.where),
                     "), too far back to place"));
    }
  }

  const bool is_log = text.find("\"event_type\":\"log\"") != std::string_view::npos;
  bool is_checkpoint = false;
  if (is_log && content_ok) {
    is_checkpoint = text.find("\"event\":\"checkpoint\"") != std::string_view::npos;
    logRecord(text, t);
  }
  if (extends) {
    remember(t.seq, t);
    last_ = {true, t.seq, t.hash, loc(), content_ok, is_checkpoint};
    r_.last_seq = t.seq;
  }
}

void LogVerifier::logRecord(std::string_view text, const RecordTail& t) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !jf::field(j, "log") || !jf::field(j, "log")->is_object()) {
    problem("malformed", here(), t.seq, "a log record that is not valid JSON");
    return;
  }
  const nlohmann::json& log = jf::object(j, "log");
  const std::string event = jf::str(log, "event");
  if (jf::has(log, "log_id")) {
    const std::string id = jf::str(log, "log_id");
    if (r_.log_id.empty()) {
      r_.log_id = id;
    } else if (id != r_.log_id) {
      problem("malformed", here(), t.seq,
              strCat("a record of another log (log_id ", id, ", not ", r_.log_id, ")"));
    }
  }
  if (event == "file") {
    const std::string reason = jf::str(log, "reason");
    const nlohmann::json& prev = jf::object(log, "previous_file");
    if (!partial_file_.empty()) {
      if (reason == "resume" && jf::u64(prev, "partial_tail_bytes") == partial_bytes_) {
        r_.notes.push_back(strCat(
            partial_file_, ": ends in an incomplete record of ", std::to_string(partial_bytes_),
            " bytes, left by a writer that stopped mid-write; recorded on resume at ", here()));
      } else {
        problem("truncated", partial_file_, 0,
                strCat("the file ends in an incomplete record (", std::to_string(partial_bytes_),
                       " bytes) that the next file's record does not account for"));
      }
      partial_file_.clear();
    }
    if (const nlohmann::json& dropped = jf::object(prev, "dropped_file");
        reason == "resume" && !dropped.empty()) {
      r_.notes.push_back(strCat(here(), ": the writer removed ", jf::str(dropped, "file", "?"),
                                " on resume; it held no whole record (",
                                std::to_string(jf::u64(dropped, "bytes")),
                                " bytes of a first record, left by a writer that stopped)"));
    }
    if (reason == "resume" && !jf::boolean(prev, "clean", true)) {
      r_.notes.push_back(strCat(here(), ": the writer resumed after an unclean stop (",
                                jf::str(prev, "file", "?"), " had no final checkpoint)"));
    }
    if (reason == "rotate" && last_.valid && !last_.is_checkpoint) {
      problem("malformed", here(), t.seq,
              "the previous file was rotated but does not end with a checkpoint");
    }
  } else if (event == "checkpoint") {
    ++r_.checkpoints;
    Checkpoint c;
    Digest signed_hash{};
    if (!parseCheckpoint(log, c) || !fromHex(c.signed_hash, signed_hash.data(), 32)) {
      problem("malformed", here(), t.seq, "a checkpoint without its fields");
      return;
    }
    const bool matches_chain = c.signed_seq + 1 == t.seq && signed_hash == t.prev;
    if (!matches_chain) {
      problem("rewritten", here(), t.seq,
              strCat("the checkpoint signed record ", std::to_string(c.signed_seq), " with hash ",
                     c.signed_hash.substr(0, 16), "..., but the chain here has another: ",
                     r_.last_verified_seq
                         ? strCat("records after ", std::to_string(r_.last_verified_seq))
                         : std::string("records"),
                     " up to here were rewritten"));
    }
    if (auto it = copy_.find(c.signed_seq); it != copy_.end()) {
      if (it->second != signed_hash) {
        problem("rewritten", here(), t.seq,
                "the checkpoint differs from the one in the checkpoint copy");
      }
      copy_.erase(it);
    }
    if (c.final_checkpoint) after_final_ = true;
    if (std::find(r_.key_ids.begin(), r_.key_ids.end(), c.key_id) == r_.key_ids.end()) {
      r_.key_ids.push_back(c.key_id);
    }
    if (keys_.empty()) return;
    const SigningKey* key = nullptr;
    for (const SigningKey& k : keys_) {
      if (k.id() == c.key_id) key = &k;
    }
    if (!key) {
      problem("signature", here(), t.seq,
              strCat("signed by key ", c.key_id, ", which is not among the public keys given"));
      return;
    }
    if (!key->verify(checkpointMessage(c), c.sig)) {
      problem("signature", here(), t.seq, "the checkpoint's signature does not verify");
      return;
    }
    ++r_.checkpoints_verified;
    if (matches_chain) r_.last_verified_seq = std::max(r_.last_verified_seq, c.signed_seq);
  } else if (event == "retention") {
    const nlohmann::json& from = jf::object(log, "chain_from");
    Digest prev{};
    if (head_gap_ && jf::u64(from, "seq") == head_seq_ &&
        fromHex(jf::str(from, "prev"), prev.data(), 32) && prev == head_prev_) {
      head_gap_ = false;
      r_.notes.push_back(seqRange(1, head_seq_ - 1, "was", "were",
                                  strCat(" removed by the retention policy (", here(), ")")));
    }
  }
}

LogReport LogVerifier::finish() {
  if (!partial_file_.empty()) {
    problem(
        "truncated", partial_file_, 0,
        strCat("the file ends in an incomplete record (", std::to_string(partial_bytes_),
               " bytes): the log was cut, or its writer stopped mid-write and has not resumed"));
  }
  if (head_gap_) {
    problem("deleted", head_where_, head_seq_,
            seqRange(1, head_seq_ - 1, "is", "are",
                     " missing before the first record and no retention record accounts for them"));
  }
  for (const auto& [from, gap] : missing_) {
    problem("deleted", gap.where, from, seqRange(from, gap.end, "is", "are", " missing"));
  }
  if (missing_dropped_) {
    problem("deleted", files_.empty() ? std::string("?") : files_.back(), 0,
            strCat(std::to_string(missing_dropped_), " more missing records not listed"));
  }
  for (const auto& [seq, entries] : window_) {
    if (entries.size() < 2) continue;
    for (const Entry& e : entries) {
      if (!e.linked) {
        problem(
            "inserted", at(e.where), seq,
            "one of several records claiming this sequence number; no later record settles which");
      }
    }
  }
  for (const auto& [seq, hash] : copy_) {
    // Met in the log: erased. Below the first record: removed by retention, or
    // already reported as deleted.
    if (seq < r_.first_seq) continue;
    if (seq >= r_.last_seq) {
      problem("truncated", files_.empty() ? std::string("?") : here(), r_.last_seq,
              strCat("the log ends at record ", std::to_string(r_.last_seq),
                     " but the checkpoint copy holds a checkpoint of record ", std::to_string(seq),
                     ": at least ", seqRange(r_.last_seq + 1, seq, "was", "were", " cut off")));
    } else {
      problem("deleted", "checkpoint copy", seq,
              strCat("the checkpoint of record ", std::to_string(seq),
                     " in the checkpoint copy is not in the log"));
    }
  }
  if (r_.records == 0)
    problem("truncated", files_.empty() ? std::string("?") : files_.back(), 0, "no records");
  if (last_.valid) {
    r_.closed = after_final_;  // the last record was a final checkpoint
    if (!keys_.empty() && last_.seq > r_.last_verified_seq + 1) {
      r_.notes.push_back(seqRange(r_.last_verified_seq + 1, last_.seq, "comes", "come",
                                  " after the last signed checkpoint: only the hash chain protects "
                                  "them until the next checkpoint"));
    }
  }
  std::stable_sort(r_.problems.begin(), r_.problems.end(),
                   [](const LogFinding& a, const LogFinding& b) { return a.seq < b.seq; });
  if (keys_.empty()) {
    r_.notes.push_back(
        "checkpoint signatures were not checked (no public key given): a log rewritten "
        "from the first record on would not be detected");
  }
  return std::move(r_);
}

namespace {

Status feedFile(LogVerifier& v, const std::string& path, bool is_copy) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return makeError(errnoText(path));
  if (!is_copy) v.beginFile(fs::path(path).filename().string());
  std::string line;
  std::vector<char> buf(1 << 16);
  uint64_t line_no = 0;
  bool overlong = false;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    size_t start = 0;
    for (const char* nl; (nl = static_cast<const char*>(
                              std::memchr(buf.data() + start, '\n', n - start))) != nullptr;) {
      const size_t i = static_cast<size_t>(nl - buf.data());
      if (!overlong) line.append(buf.data() + start, i - start);
      ++line_no;
      if (is_copy) {
        v.checkpointCopy(line, line_no);
      } else {
        if (overlong) {
          v.overlongLine();
        } else {
          v.line(line);
        }
      }
      line.clear();
      overlong = false;
      start = i + 1;
    }
    if (!overlong) line.append(buf.data() + start, n - start);
    if (line.size() > LogVerifier::kMaxLine) {
      overlong = true;
      line.clear();
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return makeError(strCat(path, ": read error"));
  if (!is_copy) v.endFile(overlong ? LogVerifier::kMaxLine + 1 : line.size());
  return {};
}

}  // namespace

Result<LogReport> verifyLogFiles(const std::vector<std::string>& paths,
                                 const std::string& checkpoint_copy, std::vector<SigningKey> keys) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::pair<uint64_t, std::string>> found;
      for (const auto& entry : fs::directory_iterator(p, ec)) {
        const std::string name = entry.path().filename().string();
        if (uint64_t first = logFileFirstSeq(name)) found.emplace_back(first, entry.path());
      }
      if (ec) return makeError(strCat(p, ": ", ec.message()));
      std::sort(found.begin(), found.end());
      if (found.empty()) return makeError(strCat(p, ": no log files (events-<seq>.jsonl) in it"));
      for (auto& f : found)
        files.push_back(std::move(f.second));
    } else {
      files.push_back(p);
    }
  }
  LogVerifier v(std::move(keys));
  if (!checkpoint_copy.empty()) {
    if (Status st = feedFile(v, checkpoint_copy, true); !st) return st.error();
  }
  for (const std::string& f : files) {
    if (Status st = feedFile(v, f, false); !st) return st.error();
  }
  return v.finish();
}

}  // namespace palisade::events
