#include "policy/diagnostics.h"

#include <algorithm>

namespace palisade::policy {

void Diagnostics::error(SourceLoc loc, std::string message) {
  if (list_.size() < kMaxKept) list_.push_back({Severity::Error, loc, std::move(message)});
  ++errors_;
}

void Diagnostics::warning(SourceLoc loc, std::string message) {
  if (list_.size() < kMaxKept) list_.push_back({Severity::Warning, loc, std::move(message)});
  ++warnings_;
}

std::string Diagnostics::format() const {
  std::vector<const Diagnostic*> sorted;
  for (const auto& d : list_)
    sorted.push_back(&d);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic* a, const Diagnostic* b) {
    return a->loc.line != b->loc.line ? a->loc.line < b->loc.line : a->loc.column < b->loc.column;
  });
  std::string out;
  for (const Diagnostic* d : sorted) {
    out += file_;
    if (d->loc.line) {
      out += ':';
      out += std::to_string(d->loc.line);
      out += ':';
      out += std::to_string(d->loc.column);
    }
    out += d->severity == Severity::Error ? ": error: " : ": warning: ";
    out += d->message;
    out += '\n';
  }
  const size_t hidden = errors_ + warnings_ - list_.size();
  if (hidden > 0) {
    out += file_;
    out += ": note: ";
    out += std::to_string(hidden);
    out += " more problems not shown";
    out += saturated() ? " (checking stopped after too many errors)\n" : "\n";
  }
  return out;
}

}  // namespace palisade::policy
