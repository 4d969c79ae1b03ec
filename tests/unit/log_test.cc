// The tamper-evident log: every kind of tampering is found and located, an
// intact log never raises an alarm, and the chain survives rotation,
// retention, restarts, crashes and write failures.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "events/chain_log.h"
#include "events/log_verify.h"

namespace palisade::events {
namespace {

namespace fs = std::filesystem;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/palisade-log-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    dir_ = tmp_ + "/log";
    auto key = SigningKey::generate();
    ASSERT_TRUE(key.ok()) << key.error().message;
    ASSERT_TRUE(key->savePrivate(tmp_ + "/key.pem"));
    ASSERT_TRUE(key->savePublic(tmp_ + "/key.pub"));
  }
  void TearDown() override {
    if (!getenv("PALISADE_KEEP_TMP")) fs::remove_all(tmp_);
  }

  ChainLogOptions options() const {
    ChainLogOptions o;
    o.dir = dir_;
    o.host = "hv1";
    o.checkpoint_records = 100;
    o.checkpoint_copy = tmp_ + "/checkpoints.jsonl";
    return o;
  }

  std::unique_ptr<ChainLog> openLog(const ChainLogOptions& o) {
    auto key = SigningKey::loadPrivate(tmp_ + "/key.pem");
    EXPECT_TRUE(key.ok()) << key.error().message;
    auto log = ChainLog::open(o, std::move(*key));
    EXPECT_TRUE(log.ok()) << log.error().message;
    return log.ok() ? std::move(*log) : nullptr;
  }

  static std::string events(int from, int n) {
    std::string s;
    for (int i = from; i < from + n; ++i) {
      s += strCat("{\"timestamp\":\"2026-11-22T10:00:00.000000+00:00\",\"event_type\":\"flow\",",
                  "\"flow\":{\"n\":", std::to_string(i), "}}\n");
    }
    return s;
  }

  void writeLog(int n, ChainLogOptions o) {
    auto log = openLog(o);
    ASSERT_TRUE(log);
    for (int i = 0; i < n; i += 50)
      ASSERT_TRUE(log->write(events(i, std::min(50, n - i))));
    ASSERT_TRUE(log->close());
  }

  LogReport verify(bool with_copy = true, bool with_key = true) {
    std::vector<SigningKey> keys;
    if (with_key) keys.push_back(SigningKey::loadPublic(tmp_ + "/key.pub").value());
    auto r = verifyLogFiles({dir_}, with_copy ? tmp_ + "/checkpoints.jsonl" : "", std::move(keys));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? std::move(*r) : LogReport{};
  }

  std::vector<std::string> files() const {
    std::vector<std::string> f;
    for (const auto& e : fs::directory_iterator(dir_))
      f.push_back(e.path());
    std::sort(f.begin(), f.end());
    return f;
  }

  static std::vector<std::string> readLines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);)
      lines.push_back(l);
    return lines;
  }
  static void writeLines(const std::string& path, const std::vector<std::string>& lines) {
    std::ofstream out(path, std::ios::trunc);
    for (const auto& l : lines)
      out << l << '\n';
  }

  // Gives a record new content and a hash that matches it, with prev as given.
  static std::string reseal(std::string line, const std::string& new_body_part,
                            const std::string& old_body_part, const std::string* prev_hex) {
    if (!old_body_part.empty()) {
      size_t at = line.find(old_body_part);
      EXPECT_NE(at, std::string::npos);
      line.replace(at, old_body_part.size(), new_body_part);
    }
    RecordTail t;
    EXPECT_TRUE(parseRecordTail(line, t)) << line;
    std::string body = line.substr(0, t.body_len);
    if (prev_hex) body.replace(body.size() - 65, 64, *prev_hex);
    Sha256 sha;
    return strCat(body, ",\"hash\":\"", toHex(sha(body)), "\"}");
  }
  static std::string hashOf(const std::string& line) {
    RecordTail t;
    EXPECT_TRUE(parseRecordTail(line, t));
    return toHex(t.hash);
  }

  static std::string kinds(const LogReport& r) {
    std::string s;
    for (const auto& p : r.problems)
      s += strCat(p.kind, "@", p.where, "#", std::to_string(p.seq), " (", p.detail, ")\n");
    return s;
  }

  std::string tmp_, dir_;
};

TEST_F(LogTest, RecordsChainAndAnIntactLogVerifiesClean) {
  writeLog(1000, options());
  auto lines = readLines(files()[0]);
  // file record, clock warning when unsynchronised, 1000 events, 10 + final checkpoints
  ASSERT_GE(lines.size(), 1011u);
  auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["event_type"], "log");
  EXPECT_EQ(first["log"]["event"], "file");
  EXPECT_EQ(first["log"]["reason"], "open");
  EXPECT_EQ(first["log"]["host"], "hv1");
  EXPECT_TRUE(first["log"]["clock"].contains("synchronized"));
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["prev"], std::string(64, '0'));
  auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["prev"], first["hash"]);
  auto last = nlohmann::json::parse(lines.back());
  EXPECT_EQ(last["log"]["event"], "checkpoint");
  EXPECT_EQ(last["log"]["final"], true);
  // Every record's hash is SHA-256 of its own text up to ,"hash" — checkable with any tool.
  Sha256 sha;
  for (const auto& l : lines) {
    size_t at = l.rfind(",\"hash\":\"");
    EXPECT_EQ(toHex(sha(std::string_view(l).substr(0, at))), nlohmann::json::parse(l)["hash"]);
  }
  LogReport r = verify();
  EXPECT_TRUE(r.intact()) << kinds(r);
  EXPECT_EQ(r.records, lines.size());
  EXPECT_EQ(r.first_seq, 1u);
  EXPECT_EQ(r.last_seq, lines.size());
  EXPECT_GE(r.checkpoints, 11u);
  EXPECT_EQ(r.checkpoints_verified, r.checkpoints);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(readLines(tmp_ + "/checkpoints.jsonl").size(), r.checkpoints);
}

TEST_F(LogTest, ModifiedContentIsFoundAtItsRecord) {
  writeLog(300, options());
  auto f = files()[0];
  auto lines = readLines(f);
  size_t victim = 150;
  size_t at = lines[victim].find("\"n\":");
  lines[victim].replace(at, 4, "\"m\":");
  writeLines(f, lines);
  LogReport r = verify();
  ASSERT_EQ(r.problems.size(), 1u) << kinds(r);
  EXPECT_EQ(r.problems[0].kind, "modified");
  EXPECT_EQ(r.problems[0].seq, victim + 1);
  EXPECT_EQ(r.problems[0].where,
            strCat(fs::path(f).filename().string(), ":", std::to_string(victim + 1)));
}

TEST_F(LogTest, ModifiedRecordWithRecomputedHashIsFoundByItsSuccessor) {
  writeLog(300, options());
  auto f = files()[0];
  auto lines = readLines(f);
  const size_t victim = 150;
  RecordTail t;
  ASSERT_TRUE(parseRecordTail(lines[victim], t));
  lines[victim] = reseal(lines[victim], "\"n\":9999", "\"n\":", nullptr);
  writeLines(f, lines);
  LogReport r = verify();
  ASSERT_GE(r.problems.size(), 1u) << kinds(r);
  EXPECT_EQ(r.problems[0].kind, "modified") << kinds(r);
  EXPECT_EQ(r.problems[0].seq, victim + 1) << kinds(r);
}

TEST_F(LogTest, ChainRewrittenToTheEndIsCaughtByTheSignedCheckpoints) {
  writeLog(300, options());
  auto f = files()[0];
  auto lines = readLines(f);
  const size_t victim = 150;
  // The attacker re-chains everything after the change, but cannot sign.
  lines[victim] = reseal(lines[victim], "\"n\":9999", "\"n\":", nullptr);
  for (size_t i = victim + 1; i < lines.size(); ++i) {
    std::string prev = hashOf(lines[i - 1]);
    lines[i] = reseal(lines[i], "", "", &prev);
  }
  writeLines(f, lines);
  LogReport r = verify(false);
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems[0].kind, "rewritten") << kinds(r);
  // Located between the last good checkpoint and the first that fails.
  EXPECT_NE(r.problems[0].detail.find("records after "), std::string::npos) << kinds(r);
  EXPECT_LT(r.last_verified_seq, victim + 1);
  // Without the key, the chain alone cannot tell: the report says so.
  LogReport unsigned_r = verify(false, false);
  EXPECT_FALSE(unsigned_r.intact()) << "the checkpoint's signed hash still disagrees";
  EXPECT_FALSE(unsigned_r.notes.empty());
}

TEST_F(LogTest, DeletedRecordsAreNamed) {
  writeLog(300, options());
  auto f = files()[0];
  auto lines = readLines(f);
  lines.erase(lines.begin() + 120, lines.begin() + 123);  // seq 121-123
  writeLines(f, lines);
  LogReport r = verify();
  ASSERT_EQ(r.problems.size(), 1u) << kinds(r);
  EXPECT_EQ(r.problems[0].kind, "deleted");
  EXPECT_EQ(r.problems[0].seq, 121u);
  EXPECT_NE(r.problems[0].detail.find("records 121-123"), std::string::npos) << kinds(r);
}

TEST_F(LogTest, InsertedCopiesAndForgeriesAreFound) {
  writeLog(300, options());
  auto f = files()[0];
  auto lines = readLines(f);
  auto copy = lines;
  copy.insert(copy.begin() + 200, lines[100]);  // a replayed record
  writeLines(f, copy);
  LogReport r = verify();
  ASSERT_EQ(r.problems.size(), 1u) << kinds(r);
  EXPECT_EQ(r.problems[0].kind, "inserted");
  EXPECT_EQ(r.problems[0].seq, 101u);
  EXPECT_NE(r.problems[0].where.find(":201"), std::string::npos) << kinds(r);

  // A forged record that claims the next number and links correctly.
  size_t at = 0;
  while (at < lines.size() && lines[at].find("\"n\":150}") == std::string::npos)
    ++at;
  ASSERT_LT(at, lines.size());
  auto forged = lines;
  std::string prev = hashOf(lines[at - 1]);
  std::string fake = reseal(lines[at], "\"n\":-1}", "\"n\":150}", &prev);
  forged.insert(forged.begin() + static_cast<long>(at), fake);
  writeLines(f, forged);
  r = verify();
  ASSERT_EQ(r.problems.size(), 1u) << kinds(r);
  EXPECT_EQ(r.problems[0].kind, "inserted");
  EXPECT_NE(r.problems[0].where.find(strCat(":", std::to_string(at + 1))), std::string::npos)
      << kinds(r);

  // The same forgery placed after the genuine record.
  forged = lines;
  forged.insert(forged.begin() + static_cast<long>(at) + 1, fake);
  writeLines(f, forged);
  r = verify();
  ASSERT_EQ(r.problems.size(), 1u) << kinds(r);
  EXPECT_EQ(r.problems[0].kind, "inserted");
  EXPECT_NE(r.problems[0].where.find(strCat(":", std::to_string(at + 2))), std::string::npos)
      << kinds(r);
}

TEST_F(LogTest, ReorderedRecordsAreFound) {
  writeLog(300, options());
  auto f = files()[0];
  auto lines = readLines(f);
  std::swap(lines[100], lines[101]);  // seq 101 and 102
  writeLines(f, lines);
  LogReport r = verify();
  ASSERT_EQ(r.problems.size(), 1u) << kinds(r);
  EXPECT_EQ(r.problems[0].kind, "reordered");
  EXPECT_EQ(r.problems[0].seq, 101u);

  lines = readLines(f);
  std::swap(lines[100], lines[101]);  // back
  auto moved = lines[50];
  lines.erase(lines.begin() + 50);
  lines.insert(lines.begin() + 250, moved);
  writeLines(f, lines);
  r = verify();
  ASSERT_EQ(r.problems.size(), 1u) << kinds(r);
  EXPECT_EQ(r.problems[0].kind, "reordered");
  EXPECT_EQ(r.problems[0].seq, 51u);
}

TEST_F(LogTest, TruncationIsFoundByTheCheckpointCopyOrThePartialRecord) {
  writeLog(300, options());
  auto f = files()[0];
  auto lines = readLines(f);
  auto cut = lines;
  cut.resize(200);
  writeLines(f, cut);
  LogReport r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems[0].kind, "truncated") << kinds(r);
  EXPECT_EQ(r.problems[0].seq, 200u) << kinds(r);

  // Cut in the middle of a record.
  writeLines(f, lines);
  auto size = fs::file_size(f);
  fs::resize_file(f, size - 40);
  r = verify();
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems[0].kind, "truncated") << kinds(r);
}

TEST_F(LogTest, BadSignaturesAndUnknownKeysAreFound) {
  writeLog(300, options());
  auto f = files()[0];
  auto lines = readLines(f);
  size_t cp = 0;
  for (size_t i = 0; i < lines.size() && !cp; ++i)
    if (lines[i].find("\"event\":\"checkpoint\"") != std::string::npos) cp = i;
  ASSERT_GT(cp, 0u);
  auto j = nlohmann::json::parse(lines[cp]);
  std::string sig = j["log"]["sig"];
  std::string bad = sig;
  bad[10] = bad[10] == 'a' ? 'b' : 'a';
  lines[cp] = reseal(lines[cp], bad, sig, nullptr);
  std::string prev = hashOf(lines[cp]);
  lines[cp + 1] = reseal(lines[cp + 1], "", "", &prev);
  for (size_t i = cp + 2; i < lines.size(); ++i) {
    prev = hashOf(lines[i - 1]);
    lines[i] = reseal(lines[i], "", "", &prev);
  }
  writeLines(f, lines);
  LogReport r = verify(false);
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems[0].kind, "signature") << kinds(r);
  EXPECT_EQ(r.problems[0].seq, cp + 1);

  // A key that did not sign this log.
  auto other = SigningKey::generate();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->savePublic(tmp_ + "/other.pub"));
  std::vector<SigningKey> keys;
  keys.push_back(SigningKey::loadPublic(tmp_ + "/other.pub").value());
  auto r2 = verifyLogFiles({dir_}, "", std::move(keys));
  ASSERT_TRUE(r2.ok());
  ASSERT_FALSE(r2->intact());
  EXPECT_EQ(r2->problems[0].kind, "signature");
}

TEST_F(LogTest, FilesSplitAtTheRecordThatReachesTheSizeHoweverEventsAreBatched) {
  ChainLogOptions o = options();
  o.max_file_bytes = 8000;
  auto log = openLog(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(log->write(events(0, 600)));  // one batch, several files' worth
  ASSERT_TRUE(log->close());
  auto one_batch = files();
  ASSERT_GE(one_batch.size(), 5u);
  for (size_t i = 0; i + 1 < one_batch.size(); ++i) {
    // Everything before the record that reached the size, and the checkpoint
    // that closes the file, is under the size.
    auto lines = readLines(one_batch[i]);
    ASSERT_GE(lines.size(), 3u);
    size_t before = 0;
    for (size_t l = 0; l + 2 < lines.size(); ++l)
      before += lines[l].size() + 1;
    EXPECT_LT(before, o.max_file_bytes) << one_batch[i];
    EXPECT_GE(before + lines[lines.size() - 2].size() + 1, o.max_file_bytes) << one_batch[i];
    EXPECT_EQ(nlohmann::json::parse(lines.back())["log"]["event"], "checkpoint");
  }
  EXPECT_TRUE(verify().intact());

  // The same events one at a time split into files at the same records.
  std::vector<std::string> names;
  for (const auto& f : one_batch)
    names.push_back(fs::path(f).filename().string());
  fs::remove_all(dir_);
  fs::remove(tmp_ + "/checkpoints.jsonl");
  log = openLog(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 600; ++i)
    ASSERT_TRUE(log->write(events(i, 1)));
  ASSERT_TRUE(log->close());
  std::vector<std::string> singly;
  for (const auto& f : files())
    singly.push_back(fs::path(f).filename().string());
  EXPECT_EQ(singly, names);
}

TEST_F(LogTest, RotationRetentionAndRestartsKeepOneVerifiableChain) {
  ChainLogOptions o = options();
  o.max_file_bytes = 20000;  // about 100 records a file
  writeLog(1000, o);
  auto before = files();
  ASSERT_GE(before.size(), 5u);
  LogReport r = verify();
  EXPECT_TRUE(r.intact()) << kinds(r);
  EXPECT_EQ(r.files, before.size());
  // The file names carry each file's first sequence number.
  for (const auto& f : before) {
    auto first = nlohmann::json::parse(readLines(f)[0]);
    EXPECT_EQ(logFileFirstSeq(fs::path(f).filename().string()), first["seq"].get<uint64_t>());
  }

  // A restart continues the chain in a new file.
  writeLog(100, o);
  r = verify();
  EXPECT_TRUE(r.intact()) << kinds(r);
  auto newest = nlohmann::json::parse(readLines(files()[before.size()])[0]);
  EXPECT_EQ(newest["log"]["reason"], "resume");
  EXPECT_EQ(newest["log"]["previous_file"]["clean"], true);

  // Retention removes the oldest files and says so in the chain.
  o.retain_files = 3;
  writeLog(300, o);
  auto after = files();
  EXPECT_LE(after.size(), 3u);
  r = verify();
  EXPECT_TRUE(r.intact()) << kinds(r);
  bool noted = false;
  for (const auto& n : r.notes)
    noted |= n.find("removed by the retention policy") != std::string::npos;
  EXPECT_TRUE(noted);

  // Removing the oldest file by hand is not retention.
  fs::remove(after[0]);
  r = verify(false);
  ASSERT_FALSE(r.intact());
  EXPECT_EQ(r.problems[0].kind, "deleted") << kinds(r);
}

TEST_F(LogTest, ACrashMidRecordIsAccountedForOnResume) {
  writeLog(100, options());
  auto f = files()[0];
  {
    std::ofstream out(f, std::ios::app);
    out << "{\"timestamp\":\"2026-11-22T10:00:00.000000+00:00\",\"event_type\":\"flo";  // torn
                                                                                        // write
  }
  writeLog(100, options());
  LogReport r = verify();
  EXPECT_TRUE(r.intact()) << kinds(r);
  bool noted = false;
  for (const auto& n : r.notes)
    noted |= n.find("incomplete record") != std::string::npos;
  EXPECT_TRUE(noted);
  auto resumed = nlohmann::json::parse(readLines(files().back())[0]);
  EXPECT_GT(resumed["log"]["previous_file"]["partial_tail_bytes"].get<uint64_t>(), 0u);
}

// Killed between creating a new file and finishing its first record: the
// file holds no whole line. The next start removes it, goes on from the file
// before, and says so in the chain.
TEST_F(LogTest, ACrashCreatingAFileIsAccountedForOnResume) {
  ChainLogOptions o = options();
  writeLog(100, o);
  RecordTail last;
  ASSERT_TRUE(parseRecordTail(readLines(files()[0]).back(), last));
  const uint64_t first_end = last.seq;
  for (const std::string& torn : {std::string(), std::string("{\"timestamp\":\"2026-11-22T1")}) {
    const std::string path = dir_ + "/" + logFileName(last.seq + 1);
    std::ofstream(path) << torn;
    auto log = openLog(o);
    ASSERT_TRUE(log) << "the writer must resume over a torn file of " << torn.size() << " bytes";
    ASSERT_TRUE(log->write(events(0, 10)));
    ASSERT_TRUE(log->close());
    auto resumed = nlohmann::json::parse(readLines(files().back())[0]);
    EXPECT_EQ(resumed["log"]["reason"], "resume");
    EXPECT_EQ(resumed["log"]["previous_file"]["dropped_file"]["bytes"].get<uint64_t>(),
              torn.size());
    LogReport r = verify();
    EXPECT_TRUE(r.intact()) << kinds(r);
    bool noted = false;
    for (const auto& n : r.notes)
      noted |= n.find("held no whole record") != std::string::npos;
    EXPECT_TRUE(noted);
    ASSERT_TRUE(parseRecordTail(readLines(files().back()).back(), last));
  }
  EXPECT_GT(last.seq, first_end + 20);  // both resumes wrote their 10 events
}

TEST_F(LogTest, AWriteFailureRewindsTheChainAndRecordsTheLoss) {
  ChainLogOptions o = options();
  auto log = openLog(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(log->write(events(0, 10)));
  // Limit the file size so the next batch cannot be written (EFBIG, not a signal).
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto prev_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = fs::file_size(log->activeFile()) + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  Status st = log->write(events(10, 20));
  Status st2 = log->write(events(30, 7));  // still failing: the count grows
  EXPECT_FALSE(st2.ok());
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev_handler);
  EXPECT_FALSE(st.ok());
  ASSERT_TRUE(log->write(events(30, 5)));
  ASSERT_TRUE(log->close());
  LogReport r = verify();
  EXPECT_TRUE(r.intact()) << kinds(r);
  bool lost = false;
  for (const auto& l : readLines(log->activeFile())) {
    if (l.find("\"event\":\"lost\"") == std::string::npos) continue;
    auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j["log"]["events"], 27);
    EXPECT_EQ(j["log"]["reason"], "File too large");
    lost = true;
  }
  EXPECT_TRUE(lost);
}

TEST_F(LogTest, KeysAreKeptApartAndPrivate) {
  EXPECT_FALSE(checkKeyApart(dir_ + "/key.pem", dir_).ok());
  EXPECT_TRUE(checkKeyApart(tmp_ + "/key.pem", dir_).ok());
  chmod((tmp_ + "/key.pem").c_str(), 0644);
  auto k = SigningKey::loadPrivate(tmp_ + "/key.pem");
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.error().message.find("readable by group or others"), std::string::npos);
  EXPECT_FALSE(SigningKey::generate()->savePrivate(tmp_ + "/key.pub").ok()) << "never overwrites";
}

TEST_F(LogTest, ARecordOfAnotherLogIsNotAccepted) {
  writeLog(50, options());
  auto lines = readLines(files()[0]);
  std::string other_dir = dir_;
  dir_ = tmp_ + "/other";
  ChainLogOptions o = options();
  o.checkpoint_copy = tmp_ + "/other-checkpoints.jsonl";
  writeLog(50, o);
  auto other_lines = readLines(files()[0]);
  dir_ = other_dir;
  // Splice the other log's first checkpoint in place of ours, resealed into our chain.
  size_t cp = 0, ocp = 0;
  for (size_t i = 0; i < lines.size() && !cp; ++i)
    if (lines[i].find("\"event\":\"checkpoint\"") != std::string::npos) cp = i;
  for (size_t i = 0; i < other_lines.size() && !ocp; ++i)
    if (other_lines[i].find("\"event\":\"checkpoint\"") != std::string::npos) ocp = i;
  ASSERT_GT(cp, 0u);
  ASSERT_GT(ocp, 0u);
  LogReport r = verify();
  EXPECT_TRUE(r.intact()) << kinds(r);
  std::string f = files()[0];
  lines[cp] = other_lines[ocp];
  writeLines(f, lines);
  r = verify(false);
  EXPECT_FALSE(r.intact());
  bool named = false;
  for (const auto& p : r.problems)
    named |= p.kind == "malformed" &&
             p.detail.find("a record of another log") != std::string::npos && p.seq == cp + 1;
  EXPECT_TRUE(named) << kinds(r);
}

}  // namespace
}  // namespace palisade::events
