// What a pipeline's counters say, in the two forms every command prints them:
// JSON (`replay --json`, `stats --json`) and the per-layer and per-reason
// tables of the text summaries.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "pipeline/pipeline.h"

namespace palisade::pipeline {

// packets, bytes, forwarded, dropped, answered, flows{...,live}, answers,
// vxlan, layers{passed,dropped}, drop_reasons (only reasons that occurred).
nlohmann::json statsJson(const Stats& s, uint64_t live_flows);

// "layer passed dropped" rows, then "drop reason packets layer" rows when
// anything was dropped; each line indented by two spaces.
std::string layerTables(const Stats& s);

}  // namespace palisade::pipeline
