// Streaming decompression of HTTP bodies sent with Content-Encoding gzip or
// deflate, on Intel ISA-L's igzip (about 2.5x zlib's inflate on this
// project's captures; see bench/RESULTS.md).
//
// The wrapper is told from the body's first two bytes, not from the header's
// word: 1f 8b is gzip; a valid zlib header (method 8, check bits a multiple
// of 31) is zlib; anything else is raw deflate, which servers send for
// "deflate" as often as zlib (libhtp tries both too), but only when the
// caller allows it: clear text often parses as raw deflate (a body starting
// with `{` is a valid fixed-Huffman block), so a body labelled gzip without a
// gzip or zlib header is refused rather than inflated to garbage (Suricata's
// http-encoding-gzip-uncompressed case). Fed in pieces of any
// size, including one byte at a time. Output goes to a sink in pieces; the
// caller bounds how much it keeps and stops feeding past its limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace palisade::ids {

class Inflater {
 public:
  enum class Result : uint8_t {
    More,   // all input taken; feed the next piece
    End,    // the compressed stream ended; later bytes are not part of it
    Error,  // not valid compressed data (or a gzip/zlib checksum mismatch)
  };
  enum class Wrapper : uint8_t { Unknown, Gzip, Zlib, Raw };
  // The most output one call of the sink gets (the output buffer's size).
  static constexpr size_t kOutPiece = 64 << 10;

  // allow_raw: take a body with neither a gzip nor a zlib header as raw
  // deflate (for Content-Encoding deflate) instead of refusing it.
  explicit Inflater(bool allow_raw);
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Decompresses `in`, passing output to sink(std::string_view) until the sink
  // returns false (the caller has kept enough) or the input is used up. After
  // End or Error, further calls return the same result and produce nothing.
  template <class Sink>
  Result feed(std::string_view in, Sink&& sink) {
    while (result_ == Result::More) {
      const std::string_view out = step(in);
      if (!out.empty() && !sink(out)) break;
      if (out.empty() && in.empty()) break;
    }
    return result_;
  }

  Wrapper wrapper() const { return wrapper_; }
  // The first bytes, held back to tell the wrapper (at most two): what a
  // caller keeping a refused body as sent needs from earlier pieces.
  std::string_view head() const { return {reinterpret_cast<const char*>(head_), head_len_}; }

 private:
  // One decompression call: consumes from `in` (advancing it) and returns
  // the output it made, which stays valid until the next call.
  std::string_view step(std::string_view& in);
  void start();

  // ISA-L's state and the output buffer, taken when the wrapper is known and
  // given back to a per-thread spare list at the end: the Inflater itself is
  // small and a body allocates nothing.
  struct Work;
  struct GiveBack {
    void operator()(Work* w) const;
  };
  static std::vector<std::unique_ptr<Work>>& spareWork();  // this thread's
  std::unique_ptr<Work, GiveBack> work_;
  Result result_ = Result::More;
  Wrapper wrapper_ = Wrapper::Unknown;
  bool allow_raw_;
  uint8_t head_[2] = {0, 0};
  uint8_t head_len_ = 0;  // bytes of head_ filled
  uint8_t head_off_ = 0;  // bytes of head_ given to ISA-L
};

}  // namespace palisade::ids
