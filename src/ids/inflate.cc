#include "ids/inflate.h"

#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace palisade::ids {

namespace {
// ISA-L's state is 87 KB. Allocated per body and freed at its end, it went
// through malloc's slow paths (a free this large consolidates the heap) for
// every compressed response; a few are kept for the next bodies instead.
constexpr size_t kSpareStates = 4;
thread_local std::vector<std::unique_ptr<inflate_state>> spare_states;
}  // namespace

Inflater::Inflater(bool allow_raw) : allow_raw_(allow_raw) {}

Inflater::~Inflater() {
  if (state_ && spare_states.size() < kSpareStates) spare_states.push_back(std::move(state_));
}

void Inflater::start() {
  if (head_[0] == 0x1f && head_[1] == 0x8b) {
    wrapper_ = Wrapper::Gzip;
  } else if ((head_[0] & 0x0f) == 8 && (head_[0] >> 4) <= 7 &&
             ((static_cast<unsigned>(head_[0]) << 8) | head_[1]) % 31 == 0) {
    wrapper_ = Wrapper::Zlib;
  } else if (allow_raw_) {
    wrapper_ = Wrapper::Raw;
  } else {
    result_ = Result::Error;
    return;
  }
  if (spare_states.empty()) {
    state_ = std::make_unique<inflate_state>();
  } else {
    state_ = std::move(spare_states.back());
    spare_states.pop_back();
  }
  isal_inflate_init(state_.get());
  state_->crc_flag = wrapper_ == Wrapper::Gzip   ? ISAL_GZIP
                     : wrapper_ == Wrapper::Zlib ? ISAL_ZLIB
                                                 : ISAL_DEFLATE;
}

std::string_view Inflater::step(std::string_view& in) {
  if (!state_) {
    while (head_len_ < 2 && !in.empty()) {
      head_[head_len_++] = static_cast<uint8_t>(in.front());
      in.remove_prefix(1);
    }
    if (head_len_ < 2) return {};
    start();
    if (!state_) return {};
  }
  inflate_state& s = *state_;
  // The two bytes held back to tell the wrapper go in first, on their own.
  const bool head = head_off_ < head_len_;
  const std::string_view src =
      head ? std::string_view(reinterpret_cast<const char*>(head_) + head_off_,
                              head_len_ - head_off_)
           : in;
  s.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(src.data()));
  s.avail_in = static_cast<uint32_t>(src.size());
  s.next_out = reinterpret_cast<uint8_t*>(out_);
  s.avail_out = sizeof out_;
  const int rc = isal_inflate(&s);
  // At the stream's end ISA-L hands back the read-ahead bytes in its bit
  // buffer by moving next_in back, possibly past the start of this piece (they
  // came in an earlier one): none of this piece was used then.
  const size_t used = src.size() - std::min<size_t>(s.avail_in, src.size());
  if (head)
    head_off_ = static_cast<uint8_t>(head_off_ + used);
  else
    in.remove_prefix(used);
  const size_t produced = sizeof out_ - s.avail_out;
  if (rc < 0) {
    result_ = Result::Error;
    return {};
  }
  if (s.block_state == ISAL_BLOCK_FINISH) {
    result_ = Result::End;
  } else if (produced == 0 && used == 0 && !src.empty()) {
    // Input offered, room for output, and neither moved: never seen from
    // ISA-L, but a stalled stream is treated as broken rather than spun on.
    result_ = Result::Error;
  }
  return {out_, produced};
}

}  // namespace palisade::ids
