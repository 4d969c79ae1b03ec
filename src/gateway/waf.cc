#include "gateway/waf.h"

#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rule_message.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "core/strings.h"

namespace palisade::gateway {
namespace {

class ModSecurityEngine final : public WafEngine {
 public:
  explicit ModSecurityEngine(const WafSetup& setup) : setup_(setup) {
    ms_ = std::make_unique<modsecurity::ModSecurity>();
    ms_->setConnectorInformation("palisade-gateway " PALISADE_VERSION);
    // Matches are read from each transaction; the engine's own log lines are not wanted.
    ms_->setServerLogCb([](void*, const void*) {}, modsecurity::RuleMessageLogProperty);
  }

  Status compile() {
    for (const std::string& f : {setup_.crs_setup, setup_.rules_dir}) {
      struct stat st {};
      if (::stat(f.c_str(), &st) != 0)
        return makeError(errnoText(strCat(f, " (the OWASP CRS: Debian package modsecurity-crs)")));
    }
    for (int level : setup_.paranoia_levels) {
      auto rules = std::make_unique<modsecurity::RulesSet>();
      // The engine's own settings, then the paranoia level and threshold
      // (before CRS's initialisation, which only sets what is unset), then CRS.
      const std::string conf = strCat(
          "SecRuleEngine On\n"
          "SecRequestBodyAccess On\n"
          "SecRequestBodyLimit ",
          std::to_string(setup_.body_limit), "\n", "SecRequestBodyNoFilesLimit ",
          std::to_string(setup_.body_limit), "\n",
          "SecRequestBodyLimitAction ProcessPartial\n"
          "SecResponseBodyAccess Off\n"
          "SecAuditEngine Off\n"
          "SecPcreMatchLimit 100000\n"
          "SecPcreMatchLimitRecursion 100000\n"
          "SecArgumentSeparator &\n"
          "SecRule REQUEST_HEADERS:Content-Type \"^(?:application(?:/soap\\+|/)|text/)xml\" "
          "\"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n"
          "SecRule REQUEST_HEADERS:Content-Type \"^application/json\" "
          "\"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n"
          "SecAction \"id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=",
          std::to_string(level), "\"\n",
          "SecAction "
          "\"id:900110,phase:1,nolog,pass,t:none,setvar:tx.inbound_anomaly_score_threshold=",
          std::to_string(setup_.anomaly_threshold),
          ",setvar:tx.outbound_anomaly_score_threshold=4\"\n", "Include ", setup_.crs_setup, "\n",
          "Include ", setup_.rules_dir, "/*.conf\n");
      if (rules->load(conf.c_str(), "palisade-gateway") < 0)
        return makeError(strCat("WAF rules (paranoia ", std::to_string(level),
                                "): ", trim(rules->getParserError())));
      sets_[level] = std::move(rules);
    }
    return {};
  }

  WafVerdict inspect(const WafRequest& r, int paranoia) override {
    WafVerdict v;
    auto it = sets_.find(paranoia);
    if (it == sets_.end()) it = sets_.begin();
    modsecurity::Transaction t(ms_.get(), it->second.get(), nullptr);
    t.processConnection(r.client_ip.c_str(), r.client_port, r.server_ip.c_str(), r.server_port);
    const std::string uri(r.uri), method(r.method), version(r.version);
    t.processURI(uri.c_str(), method.c_str(), version.c_str());
    for (const auto& [k, val] : r.headers)
      t.addRequestHeader(reinterpret_cast<const unsigned char*>(k.data()), k.size(),
                         reinterpret_cast<const unsigned char*>(val.data()), val.size());
    t.processRequestHeaders();
    collect(t, v);
    if (!v.intercept) {
      if (!r.body.empty())
        t.appendRequestBody(reinterpret_cast<const unsigned char*>(r.body.data()), r.body.size());
      t.processRequestBody();
      collect(t, v);
    }
    for (const modsecurity::RuleMessage& m : t.m_rulesMessages) {
      if (std::find(v.rules.begin(), v.rules.end(), m.m_ruleId) == v.rules.end())
        v.rules.push_back(m.m_ruleId);
      // The attack rule's own message, not the scoring rules' summaries (949/980).
      if (v.message.empty() && m.m_ruleId < 949000) v.message = m.m_message;
    }
    if (auto score = t.m_collections.m_tx_collection->resolveFirst("anomaly_score")) {
      int s = 0;
      std::from_chars(score->data(), score->data() + score->size(), s);
      v.anomaly_score = s;
    }
    return v;
  }

  std::string describe() const override {
    std::string levels;
    for (const auto& [level, set] : sets_)
      levels += strCat(levels.empty() ? "" : ",", std::to_string(level));
    return strCat("OWASP CRS on libmodsecurity ", MODSECURITY_VERSION, ", paranoia ", levels,
                  ", anomaly threshold ", std::to_string(setup_.anomaly_threshold));
  }

 private:
  static void collect(modsecurity::Transaction& t, WafVerdict& v) {
    modsecurity::ModSecurityIntervention it;
    modsecurity::intervention::clean(&it);
    if (t.intervention(&it) && it.disruptive) {
      v.intercept = true;
      v.status = it.status;
    }
    modsecurity::intervention::free(&it);
  }

  WafSetup setup_;
  std::unique_ptr<modsecurity::ModSecurity> ms_;
  std::map<int, std::unique_ptr<modsecurity::RulesSet>> sets_;
};

}  // namespace

Result<std::unique_ptr<WafEngine>> makeModSecurityEngine(const WafSetup& setup) {
  auto e = std::make_unique<ModSecurityEngine>(setup);
  if (Status st = e->compile(); !st) return st.error();
  return std::unique_ptr<WafEngine>(std::move(e));
}

}  // namespace palisade::gateway
