#include "ids/inspect.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>

#include "core/strings.h"

namespace palisade::ids {

namespace {

bool equalNoCase(const char* a, std::string_view folded) {
  for (size_t i = 0; i < folded.size(); ++i)
    if (asciiLower(a[i]) != folded[i]) return false;
  return true;
}

// The number at data[pos, pos+bytes): binary (either endianness) or, with
// `string`, digits in `base`. Nothing when it does not fit or is not a number.
std::optional<uint64_t> readNumber(std::string_view data, int64_t pos, uint8_t bytes, bool string,
                                   uint8_t base, bool big_endian) {
  if (pos < 0 || bytes == 0 || static_cast<uint64_t>(pos) + bytes > data.size()) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data() + pos);
  uint64_t v = 0;
  if (!string) {
    if (bytes > 8) return {};
    for (uint8_t i = 0; i < bytes; ++i) {
      const uint64_t b = p[big_endian ? i : bytes - 1 - i];
      v = (v << 8) | b;
    }
    return v;
  }
  size_t digits = 0;
  for (uint8_t i = 0; i < bytes; ++i) {
    const int h = hexValue(static_cast<char>(p[i]));
    if (h < 0 || static_cast<unsigned>(h) >= base) break;
    const unsigned d = static_cast<unsigned>(h);
    if (v > (UINT64_MAX - d) / base) return {};
    v = v * base + d;
    ++digits;
  }
  if (digits == 0) return {};
  return v;
}

uint64_t applyMask(uint64_t v, uint64_t mask) {
  if (mask == 0) return v;
  v &= mask;
  return v >> __builtin_ctzll(mask);
}

}  // namespace

size_t findNoCase(std::string_view hay, std::string_view needle, size_t from) {
  if (needle.empty()) return from <= hay.size() ? from : std::string_view::npos;
  if (hay.size() < needle.size()) return std::string_view::npos;
  const char first = needle[0];
  const char first_up = (first >= 'a' && first <= 'z') ? static_cast<char>(first - 32) : first;
  const size_t last = hay.size() - needle.size();
  for (size_t i = from; i <= last; ++i) {
    const char c = hay[i];
    if ((c == first || c == first_up) && equalNoCase(hay.data() + i + 1, needle.substr(1)))
      return i;
  }
  return std::string_view::npos;
}

std::vector<BufferProgram> compilePrograms(const Rule& r) {
  std::vector<BufferProgram> out;
  for (const Match& m : r.matches) {
    auto it = std::find_if(out.begin(), out.end(), [&](const BufferProgram& p) {
      return p.buffer == m.buffer && p.dotprefix == m.dotprefix;
    });
    if (it == out.end()) {
      out.push_back({});
      it = out.end() - 1;
      it->buffer = m.buffer;
      it->dotprefix = m.dotprefix;
    }
    it->steps.push_back(&m);
    std::string f;
    if (m.kind == Match::Kind::Content && m.content.nocase) {
      f = m.content.bytes;
      for (char& c : f)
        c = asciiLower(c);
    }
    it->folded.push_back(std::move(f));
  }
  return out;
}

Inspector::Inspector()
    : md_(pcre2_match_data_create(32, nullptr)), mctx_(pcre2_match_context_create(nullptr)) {
  pcre2_set_match_limit(mctx_, kPcreMatchLimit);
  pcre2_set_depth_limit(mctx_, kPcreMatchLimit);
  jit_stack_ = pcre2_jit_stack_create(32 << 10, 1 << 20, nullptr);
  if (jit_stack_) pcre2_jit_stack_assign(mctx_, nullptr, jit_stack_);
}

Inspector::~Inspector() {
  pcre2_match_data_free(md_);
  pcre2_match_context_free(mctx_);
  pcre2_jit_stack_free(jit_stack_);
}

size_t jitCompile(const Rule& r) {
  size_t n = 0;
  for (const Match& m : r.matches)
    if (m.kind == Match::Kind::Pcre && m.pcre.code &&
        pcre2_jit_compile(m.pcre.code.get(), PCRE2_JIT_COMPLETE) == 0)
      ++n;
  return n;
}

int64_t Inspector::operand(const Operand& o) const {
  if (o.var >= 0 && static_cast<size_t>(o.var) < vars_.size()) return vars_[o.var];
  return o.value;
}

bool Inspector::run(const BufferProgram& prog, std::string_view data, std::span<int64_t> vars,
                    size_t min_end) {
  prog_ = &prog;
  min_end_ = min_end;
  data_ = data;
  vars_ = vars;
  steps_ = 0;
  return step(0, 0);
}

bool Inspector::content(size_t i, size_t prev_end) {
  const Match& m = *prog_->steps[i];
  const Content& c = m.content;
  const std::string_view pat = c.nocase ? std::string_view(prog_->folded[i]) : c.bytes;
  const int64_t len = static_cast<int64_t>(data_.size());
  const int64_t plen = static_cast<int64_t>(pat.size());

  int64_t start = 0, end = len;
  if (c.relative()) {
    const int64_t dist = c.distance ? operand(*c.distance) : 0;
    start = static_cast<int64_t>(prev_end) + dist;
    if (c.within) end = std::min(end, start + operand(*c.within));
  } else {
    if (c.offset) start = operand(*c.offset);
    if (c.depth) end = std::min(end, start + operand(*c.depth));
  }
  if (c.startswith) end = std::min(end, start + plen);
  start = std::max<int64_t>(start, 0);

  // Candidate positions: [start, end - plen]; endswith allows only len - plen.
  auto find = [&](int64_t from) -> int64_t {
    if (end - from < plen) return -1;
    if (c.endswith) {
      const int64_t p = len - plen;
      if (p < from || p + plen > end) return -1;
      const bool eq = c.nocase ? equalNoCase(data_.data() + p, pat)
                               : std::memcmp(data_.data() + p, pat.data(), pat.size()) == 0;
      return eq ? p : -1;
    }
    const std::string_view window = data_.substr(0, static_cast<size_t>(end));
    const size_t p = c.nocase ? findNoCase(window, pat, static_cast<size_t>(from))
                              : window.find(pat, static_cast<size_t>(from));
    return p == std::string_view::npos ? -1 : static_cast<int64_t>(p);
  };

  if (c.negated) return find(start) < 0 && step(i + 1, prev_end);

  // Retry later occurrences only when a following step is positioned after this one.
  const bool retry = i + 1 < prog_->steps.size() || min_end_ > 0;
  for (int64_t from = start;;) {
    const int64_t p = find(from);
    if (p < 0) return false;
    if (step(i + 1, static_cast<size_t>(p + plen))) return true;
    if (!retry || ++steps_ > kMaxSteps) return false;
    from = p + 1;
  }
}

bool Inspector::step(size_t i, size_t prev_end) {
  if (i == prog_->steps.size()) return min_end_ == 0 || prev_end > min_end_;
  if (++steps_ > kMaxSteps) return false;
  const Match& m = *prog_->steps[i];
  const int64_t len = static_cast<int64_t>(data_.size());
  switch (m.kind) {
    case Match::Kind::Content:
      return content(i, prev_end);

    case Match::Kind::Pcre: {
      const Pcre& p = m.pcre;
      const size_t from = p.relative ? prev_end : 0;
      if (from > data_.size()) return p.negated && step(i + 1, prev_end);
      const int rc = pcre2_match(p.code.get(), reinterpret_cast<PCRE2_SPTR>(data_.data() + from),
                                 data_.size() - from, 0, 0, md_, mctx_);
      if (p.negated) return rc < 0 && step(i + 1, prev_end);
      if (rc < 0) return false;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md_);
      return step(i + 1, from + ov[1]);
    }

    case Match::Kind::ByteTest: {
      const ByteTest& t = m.byte_test;
      const int64_t pos = operand(t.offset) + (t.relative ? static_cast<int64_t>(prev_end) : 0);
      uint8_t bytes = t.bytes;
      if (bytes == 0) bytes = static_cast<uint8_t>(std::clamp<int64_t>(len - pos, 0, 20));
      const auto v = readNumber(data_, pos, bytes, t.string, t.base, t.big_endian);
      if (!v) return false;
      const uint64_t val = applyMask(*v, t.bitmask);
      const uint64_t ref = static_cast<uint64_t>(operand(t.value));
      bool ok = false;
      switch (t.op) {
        case ByteTest::Op::Lt:
          ok = val < ref;
          break;
        case ByteTest::Op::Gt:
          ok = val > ref;
          break;
        case ByteTest::Op::Le:
          ok = val <= ref;
          break;
        case ByteTest::Op::Ge:
          ok = val >= ref;
          break;
        case ByteTest::Op::Eq:
          ok = val == ref;
          break;
        case ByteTest::Op::And:
          ok = (val & ref) != 0;
          break;
        case ByteTest::Op::Or:
          ok = (val ^ ref) != 0;
          break;
      }
      if (t.negated) ok = !ok;
      return ok && step(i + 1, prev_end);
    }

    case Match::Kind::ByteJump: {
      const ByteJump& j = m.byte_jump;
      const int64_t pos = operand(j.offset) + (j.relative ? static_cast<int64_t>(prev_end) : 0);
      const auto v = readNumber(data_, pos, j.bytes, j.string, j.base, j.big_endian);
      if (!v || *v > (1ull << 40)) return false;
      int64_t jump = static_cast<int64_t>(applyMask(*v, j.bitmask)) * j.multiplier;
      if (j.align) jump = (jump + 3) & ~int64_t{3};
      int64_t to = j.from_beginning ? jump : j.from_end ? len + jump : pos + j.bytes + jump;
      to += j.post_offset;
      if (to < 0 || to > len) return false;
      return step(i + 1, static_cast<size_t>(to));
    }

    case Match::Kind::ByteExtract: {
      const ByteExtract& e = m.byte_extract;
      const int64_t pos = e.offset + (e.relative ? static_cast<int64_t>(prev_end) : 0);
      const auto v = readNumber(data_, pos, e.bytes, e.string, e.base, e.big_endian);
      if (!v || *v > (1ull << 40)) return false;
      int64_t val = static_cast<int64_t>(*v) * e.multiplier;
      if (e.align > 1) val = (val + e.align - 1) / e.align * e.align;
      if (e.var >= 0 && static_cast<size_t>(e.var) < vars_.size()) vars_[e.var] = val;
      return step(i + 1, static_cast<size_t>(pos + e.bytes));
    }

    case Match::Kind::IsDataAt: {
      const IsDataAt& d = m.isdataat;
      // Suricata: relative data at N means N more bytes after the previous match.
      bool present = d.relative ? static_cast<int64_t>(prev_end) + d.offset <= len : d.offset < len;
      if (d.negated) present = !present;
      return present && step(i + 1, prev_end);
    }

    case Match::Kind::Bsize:
      return m.bsize.test(data_.size()) && step(i + 1, prev_end);
  }
  return false;
}

}  // namespace palisade::ids
