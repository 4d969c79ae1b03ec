// HugeArray: a fixed-size array of trivially copyable elements in its own
// anonymous mapping, aligned to 2 MiB and offered to the kernel for
// transparent huge pages (madvise MADV_HUGEPAGE; Debian's default THP mode
// is "madvise", so without the advice there are none).
//
// For tables read at random positions, one lookup per packet: the flow
// table's index and flows. With 4 KiB pages every lookup in a table of
// megabytes is a TLB miss and a page walk (two-dimensional, so dearer, in a
// virtual machine); with 2 MiB pages a 10 MiB index is five TLB entries.
// Where the kernel has no huge page to give, the memory is ordinary pages
// and works the same.
//
// The memory starts zeroed (fresh anonymous pages) and is touched only when
// used: a table sized for a million connections costs no startup time and
// no resident memory until its entries are written.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace palisade {

template <class T>
class HugeArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "HugeArray holds plain data: its memory starts as zero bytes");

 public:
  static constexpr size_t kHugePage = size_t{2} << 20;

  HugeArray() = default;
  // n elements, all bytes zero. Throws std::bad_alloc when the mapping fails.
  explicit HugeArray(size_t n) : size_(n) {
    if (n == 0) return;
    if (n * sizeof(T) < kHugePage / 2) {  // small: ordinary pages, no alignment
      bytes_ = (n * sizeof(T) + 4095) / 4096 * 4096;
      void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      data_ = static_cast<T*>(p);
      return;
    }
    bytes_ = (n * sizeof(T) + kHugePage - 1) / kHugePage * kHugePage;
    // Over-map by one huge page and trim, so the start is 2 MiB aligned.
    const size_t span = bytes_ + kHugePage;
    void* p = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    const auto base = reinterpret_cast<uintptr_t>(p);
    const uintptr_t start = (base + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
    if (start > base) ::munmap(p, start - base);
    if (const uintptr_t end = start + bytes_; base + span > end)
      ::munmap(reinterpret_cast<void*>(end), base + span - end);
    data_ = reinterpret_cast<T*>(start);
#ifdef MADV_HUGEPAGE
    (void)::madvise(data_, bytes_, MADV_HUGEPAGE);  // advice: refused, it is ordinary pages
#endif
  }
  ~HugeArray() {
    release();
  }
  HugeArray(const HugeArray&) = delete;
  HugeArray& operator=(const HugeArray&) = delete;
  HugeArray(HugeArray&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        bytes_(std::exchange(o.bytes_, 0)) {}
  HugeArray& operator=(HugeArray&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }

  size_t size() const {
    return size_;
  }
  bool empty() const {
    return size_ == 0;
  }
  // What the mapping reserves (whole huge pages), for memory accounting.
  size_t reservedBytes() const {
    return bytes_;
  }
  T* data() {
    return data_;
  }
  const T* data() const {
    return data_;
  }
  T& operator[](size_t i) {
    return data_[i];
  }
  const T& operator[](size_t i) const {
    return data_[i];
  }
  T* begin() {
    return data_;
  }
  T* end() {
    return data_ + size_;
  }
  const T* begin() const {
    return data_;
  }
  const T* end() const {
    return data_ + size_;
  }

 private:
  void release() {
    if (data_) ::munmap(data_, bytes_);
    data_ = nullptr;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t bytes_ = 0;
};

}  // namespace palisade
