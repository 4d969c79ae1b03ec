// EventWriter: the one thread that turns queued events into output.
//
// Workers each own an EventQueue (from addQueue, before start()); the writer
// drains them round-robin, formats EVE JSON lines in batches and hands them to
// its sinks. stop() drains every event committed before it was called, so an
// orderly shutdown loses nothing that was accepted.
#pragma once

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "events/queue.h"

namespace palisade::events {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual Status write(std::string_view lines) = 0;  // whole lines, each ending in '\n'
  virtual Status flush() = 0;
  // Called by the writer thread about every few milliseconds with the wall time,
  // for sinks with time-driven work (checkpoints, rotation, heartbeats).
  virtual Status tick(TimeNs /*now*/) { return {}; }
  // The last call: everything written is made durable.
  virtual Status close() { return flush(); }
};

// Appends to a file (created if missing), or writes to stdout for "-".
class FileSink final : public EventSink {
 public:
  static Result<std::unique_ptr<FileSink>> open(const std::string& path);
  ~FileSink() override;
  Status write(std::string_view lines) override;
  Status flush() override;

 private:
  FileSink(FILE* f, bool owned, std::string path) : f_(f), owned_(owned), path_(std::move(path)) {}
  FILE* f_;
  bool owned_;
  std::string path_;
};

class EventWriter {
 public:
  EventWriter() = default;
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void addSink(std::unique_ptr<EventSink> sink);
  // One queue per producing thread; call before start().
  EventQueue& addQueue(size_t capacity = 4096, size_t body_reserve = 512);

  void start();
  // Drains everything committed so far, closes the sinks and joins the thread.
  void stop();

  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const;  // events refused by full queues
  uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }  // sink write failures
  std::optional<Error> sinkError() const;

 private:
  size_t drainOnce();
  void emit(bool force);
  void run();
  void tickSinks();
  void noteSinkError(const Error& e);

  std::vector<std::unique_ptr<EventSink>> sinks_;
  std::vector<std::unique_ptr<EventQueue>> queues_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> written_{0}, lost_{0};
  std::string batch_;
  uint64_t batch_events_ = 0;
  // Batches handed to the sinks since their last flush: flushed once the
  // queues run dry, whether or not anything is still waiting in batch_.
  bool unflushed_ = false;
  mutable std::mutex error_mu_;
  std::optional<Error> sink_error_;
};

}  // namespace palisade::events
