#include "ids/inflate.h"

#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace palisade::ids {

struct Inflater::Work {
  inflate_state state;  // 87 KB
  // ISA-L decodes straight into an output buffer of 64 KiB or more; into a
  // smaller one it goes through its own window and copies out. Pieces of a
  // few kilobytes (a stream delivered a few segments at a time) inflated at
  // 0.75-0.9 GB/s into 16 KiB and 1.05-1.2 GB/s into 64 KiB (bench/RESULTS.md,
  // session 26).
  char out[kOutPiece];
};

// Allocated per body and freed at its end, ISA-L's state went through
// malloc's slow paths (a free this large consolidates the heap) for every
// compressed response; a few are kept for the next bodies instead.
constexpr size_t kSpareWork = 4;

std::vector<std::unique_ptr<Inflater::Work>>& Inflater::spareWork() {
  thread_local std::vector<std::unique_ptr<Work>> spare;
  return spare;
}

void Inflater::GiveBack::operator()(Work* w) const {
  std::unique_ptr<Work> owned(w);
  if (spareWork().size() < kSpareWork) spareWork().push_back(std::move(owned));
}

Inflater::Inflater(bool allow_raw) : allow_raw_(allow_raw) {}
Inflater::~Inflater() = default;

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
  if (std::vector<std::unique_ptr<Work>>& spare = spareWork(); spare.empty()) {
    work_.reset(new Work);
  } else {
    work_.reset(spare.back().release());
    spare.pop_back();
  }
  isal_inflate_init(&work_->state);
  work_->state.crc_flag = wrapper_ == Wrapper::Gzip   ? ISAL_GZIP
                          : wrapper_ == Wrapper::Zlib ? ISAL_ZLIB
                                                      : ISAL_DEFLATE;
}

std::string_view Inflater::step(std::string_view& in) {
  if (!work_) {
    while (head_len_ < 2 && !in.empty()) {
      head_[head_len_++] = static_cast<uint8_t>(in.front());
      in.remove_prefix(1);
    }
    if (head_len_ < 2) return {};
    start();
    if (!work_) return {};
  }
  inflate_state& s = work_->state;
  char* const out = work_->out;
  constexpr size_t kOut = sizeof work_->out;
  // The two bytes held back to tell the wrapper go in first, on their own.
  const bool head = head_off_ < head_len_;
  const std::string_view src =
      head ? std::string_view(reinterpret_cast<const char*>(head_) + head_off_,
                              head_len_ - head_off_)
           : in;
  s.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(src.data()));
  s.avail_in = static_cast<uint32_t>(src.size());
  s.next_out = reinterpret_cast<uint8_t*>(out);
  s.avail_out = kOut;
  const int rc = isal_inflate(&s);
  // At the stream's end ISA-L hands back the read-ahead bytes in its bit
  // buffer by moving next_in back, possibly past the start of this piece (they
  // came in an earlier one): none of this piece was used then.
  const size_t used = src.size() - std::min<size_t>(s.avail_in, src.size());
  if (head)
    head_off_ = static_cast<uint8_t>(head_off_ + used);
  else
    in.remove_prefix(used);
  const size_t produced = kOut - s.avail_out;
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
  return {out, produced};
}

}  // namespace palisade::ids
