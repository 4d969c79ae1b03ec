// EventQueue: one worker's bounded, single-producer single-consumer ring.
//
// Threading: exactly one producer thread (the worker) calls acquire()/commit();
// exactly one consumer (the EventWriter thread) calls front()/pop(). Slots are
// allocated once at construction. When the ring is full the event is not
// queued and `dropped()` counts it: a worker never blocks on logging.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "events/event.h"

namespace palisade::events {

class EventQueue {
 public:
  // capacity is rounded up to a power of two; each slot's body reserves body_reserve bytes.
  explicit EventQueue(size_t capacity = 4096, size_t body_reserve = 512);

  // Producer: a cleared slot to fill, or nullptr when full (counted as dropped).
  Event* acquire();
  void commit();

  // Consumer: the oldest committed event, or nullptr when empty.
  Event* front();
  void pop();

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t committed() const { return head_.load(std::memory_order_relaxed); }
  size_t capacity() const { return slots_.size(); }

 private:
  std::vector<Event> slots_;
  size_t mask_;
  alignas(64) std::atomic<uint64_t> head_{0};  // next slot the producer commits
  alignas(64) std::atomic<uint64_t> tail_{0};  // next slot the consumer reads
  alignas(64) std::atomic<uint64_t> dropped_{0};
  uint64_t cached_tail_ = 0;  // producer's view of tail_, refreshed when the ring looks full
};

}  // namespace palisade::events
