#include "events/queue.h"

#include <bit>

namespace palisade::events {

EventQueue::EventQueue(size_t capacity, size_t body_reserve)
    : slots_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)), mask_(slots_.size() - 1) {
  for (Event& e : slots_)
    e.body.reserve(body_reserve);
}

Event* EventQueue::acquire() {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  if (head - cached_tail_ >= slots_.size()) {
    cached_tail_ = tail_.load(std::memory_order_acquire);
    if (head - cached_tail_ >= slots_.size()) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
  }
  Event* e = &slots_[head & mask_];
  e->clear();
  return e;
}

void EventQueue::commit() {
  head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

Event* EventQueue::front() {
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  if (tail == head_.load(std::memory_order_acquire)) return nullptr;
  return &slots_[tail & mask_];
}

void EventQueue::pop() {
  tail_.store(tail_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

}  // namespace palisade::events
