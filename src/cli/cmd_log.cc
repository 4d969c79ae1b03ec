// palisade log keygen | verify: the tamper-evident event log's keys and its
// verification (events/chain_log.h, events/log_verify.h).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/strings.h"
#include "events/crypto.h"
#include "events/log_verify.h"

namespace palisade::cli {
namespace {

struct KeygenArgs {
  std::string private_key, public_key;
};

int keygen(const KeygenArgs& a) {
  auto key = events::SigningKey::generate();
  if (!key) {
    std::fprintf(stderr, "palisade log keygen: %s\n", key.error().message.c_str());
    return kInternal;
  }
  if (Status st = key->savePrivate(a.private_key); !st) {
    std::fprintf(stderr, "palisade log keygen: %s\n", st.error().message.c_str());
    return kCannotRead;
  }
  if (Status st = key->savePublic(a.public_key); !st) {
    std::fprintf(stderr, "palisade log keygen: %s\n", st.error().message.c_str());
    return kCannotRead;
  }
  std::printf(
      "key %s: private %s (mode 600: give it only to the writer), public %s (for "
      "'palisade log verify')\n",
      key->id().c_str(), a.private_key.c_str(), a.public_key.c_str());
  return kOk;
}

struct VerifyArgs {
  std::vector<std::string> paths, pubkeys;
  std::string checkpoints;
  bool chain_only = false, json = false;
};

int verify(const VerifyArgs& a) {
  if (a.pubkeys.empty() && !a.chain_only) {
    std::fprintf(stderr,
                 "palisade log verify: give the log's public key (--pubkey FILE); without it "
                 "only the hash chain can be checked (--chain-only)\n");
    return kUsage;
  }
  std::vector<events::SigningKey> keys;
  for (const std::string& p : a.pubkeys) {
    auto k = events::SigningKey::loadPublic(p);
    if (!k) {
      std::fprintf(stderr, "palisade log verify: %s\n", k.error().message.c_str());
      return kCannotRead;
    }
    keys.push_back(std::move(*k));
  }
  auto report = events::verifyLogFiles(a.paths, a.checkpoints, std::move(keys));
  if (!report) {
    std::fprintf(stderr, "palisade log verify: %s\n", report.error().message.c_str());
    return kCannotRead;
  }
  const events::LogReport& r = *report;
  if (a.json) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : r.problems) {
      problems.push_back(
          {{"kind", p.kind}, {"where", p.where}, {"seq", p.seq}, {"detail", p.detail}});
    }
    nlohmann::json j = {{"intact", r.intact()},
                        {"log_id", r.log_id},
                        {"files", r.files},
                        {"records", r.records},
                        {"first_seq", r.first_seq},
                        {"last_seq", r.last_seq},
                        {"checkpoints", r.checkpoints},
                        {"checkpoints_verified", r.checkpoints_verified},
                        {"last_signed_seq", r.last_verified_seq},
                        {"closed", r.closed},
                        {"key_ids", r.key_ids},
                        {"problems", problems},
                        {"problems_not_listed", r.problems_not_listed},
                        {"notes", r.notes}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    for (const auto& p : r.problems) {
      std::printf("%s: %s%s: %s\n", p.where.c_str(),
                  p.seq ? strCat("record ", std::to_string(p.seq), ": ").c_str() : "",
                  p.kind.c_str(), p.detail.c_str());
    }
    if (r.problems_not_listed) {
      std::printf("... and %llu more problems\n",
                  static_cast<unsigned long long>(r.problems_not_listed));
    }
    for (const auto& n : r.notes)
      std::printf("note: %s\n", n.c_str());
    std::printf(
        "log %s: %llu files, %llu records (%llu-%llu), %llu checkpoints, %llu verified",
        r.log_id.empty() ? "?" : r.log_id.c_str(), static_cast<unsigned long long>(r.files),
        static_cast<unsigned long long>(r.records), static_cast<unsigned long long>(r.first_seq),
        static_cast<unsigned long long>(r.last_seq), static_cast<unsigned long long>(r.checkpoints),
        static_cast<unsigned long long>(r.checkpoints_verified));
    if (!r.key_ids.empty()) std::printf(" (key %s)", join(r.key_ids, ", ").c_str());
    std::printf("; signed up to record %llu; %s\n",
                static_cast<unsigned long long>(r.last_verified_seq),
                r.closed ? "closed" : "not closed (still written, or its writer stopped)");
    if (r.intact()) {
      std::printf("INTACT\n");
    } else {
      std::printf("TAMPERED OR DAMAGED: %llu problem(s)\n",
                  static_cast<unsigned long long>(r.problems.size() + r.problems_not_listed));
    }
  }
  return r.intact() ? kOk : kFindings;
}

}  // namespace

void registerLog(CLI::App& app, Context& ctx) {
  auto* log = app.add_subcommand("log", "The tamper-evident event log: keys and verification");
  log->require_subcommand(1);
  log->footer(
      "'palisade run' and 'palisade replay' write the log with --log-dir DIR --log-key KEY.\n"
      "Each record carries a sequence number, the previous record's hash and its own\n"
      "SHA-256; Ed25519-signed checkpoints cover the chain. docs/operations.md explains it.");

  auto* kg = log->add_subcommand("keygen", "Make an Ed25519 key pair for signing checkpoints");
  auto ka = std::make_shared<KeygenArgs>();
  kg->add_option("--private", ka->private_key, "Private key file to create (mode 600)")->required();
  kg->add_option("--public", ka->public_key, "Public key file to write")->required();
  kg->footer("Never overwrites a private key. Keep it away from the log directory.");
  kg->callback([ka, &ctx] { ctx.exit_code = keygen(*ka); });

  auto* v = log->add_subcommand("verify", "Check a log: say which records were tampered with");
  auto va = std::make_shared<VerifyArgs>();
  v->add_option("paths", va->paths, "Log directories or files (files in sequence order)")
      ->required();
  v->add_option("--pubkey", va->pubkeys, "Public key(s) the checkpoints were signed with");
  v->add_option("--checkpoints", va->checkpoints,
                "The writer's external checkpoint copy (--log-checkpoints): finds truncation");
  v->add_flag("--chain-only", va->chain_only,
              "Without a public key: check the hash chain only (a rewritten log passes)");
  v->add_flag("--json", va->json, "The report as JSON");
  v->footer(
      "Prints one line per problem (FILE:LINE: record N: KIND: detail), where KIND is\n"
      "modified, deleted, inserted, reordered, truncated, signature, rewritten or\n"
      "malformed, then a summary. Exit status: 0 intact, 1 tampered or damaged, 2 usage,\n"
      "3 unreadable.");
  v->callback([va, &ctx] { ctx.exit_code = verify(*va); });
}

}  // namespace palisade::cli
