#include "events/writer.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/strings.h"

namespace palisade::events {

Result<std::unique_ptr<FileSink>> FileSink::open(const std::string& path) {
  if (path == "-") return std::unique_ptr<FileSink>(new FileSink(stdout, false, path));
  FILE* f = fopen(path.c_str(), "ab");
  if (!f) return makeError(errnoText(path));
  return std::unique_ptr<FileSink>(new FileSink(f, true, path));
}

FileSink::~FileSink() {
  if (owned_)
    fclose(f_);
  else
    fflush(f_);
}

Status FileSink::write(std::string_view lines) {
  if (fwrite(lines.data(), 1, lines.size(), f_) != lines.size()) {
    return makeError(errnoText(path_));
  }
  return {};
}

Status FileSink::flush() {
  if (fflush(f_) != 0) return makeError(errnoText(path_));
  return {};
}

EventWriter::~EventWriter() {
  stop();
}

void EventWriter::addSink(std::unique_ptr<EventSink> sink) {
  sinks_.push_back(std::move(sink));
}

EventQueue& EventWriter::addQueue(size_t capacity, size_t body_reserve) {
  queues_.push_back(std::make_unique<EventQueue>(capacity, body_reserve));
  return *queues_.back();
}

void EventWriter::start() {
  if (running_.exchange(true)) return;
  batch_.reserve(1 << 16);
  thread_ = std::thread([this] { run(); });
}

void EventWriter::stop() {
  if (!running_.exchange(false)) return;
  if (thread_.joinable()) thread_.join();
  while (drainOnce() > 0) {
  }
  emit(true);
  for (auto& s : sinks_) {
    if (Status st = s->close(); !st) noteSinkError(st.error());
  }
}

void EventWriter::noteSinkError(const Error& e) {
  std::lock_guard lock(error_mu_);
  if (!sink_error_) sink_error_ = e;
}

void EventWriter::tickSinks() {
  const TimeNs now = wallClockNs();
  for (auto& s : sinks_) {
    if (Status st = s->tick(now); !st) noteSinkError(st.error());
  }
}

uint64_t EventWriter::dropped() const {
  uint64_t n = 0;
  for (const auto& q : queues_)
    n += q->dropped();
  return n;
}

std::optional<Error> EventWriter::sinkError() const {
  std::lock_guard lock(error_mu_);
  return sink_error_;
}

size_t EventWriter::drainOnce() {
  size_t n = 0;
  for (auto& q : queues_) {
    // Bounded per queue per round, so one busy worker cannot starve the others.
    for (int i = 0; i < 256; ++i) {
      Event* e = q->front();
      if (!e) break;
      formatEveJson(*e, batch_);
      q->pop();
      ++batch_events_;
      ++n;
      if (batch_.size() >= (1 << 16)) emit(true);
    }
  }
  return n;
}

void EventWriter::emit(bool force) {
  if (batch_.empty() || (!force && batch_.size() < (1 << 12))) return;
  bool ok = true;
  for (auto& s : sinks_) {
    if (Status st = s->write(batch_); !st) {
      ok = false;
      noteSinkError(st.error());
    }
  }
  (ok ? written_ : lost_).fetch_add(batch_events_, std::memory_order_relaxed);
  unflushed_ = true;
  batch_.clear();
  batch_events_ = 0;
}

void EventWriter::run() {
  TimeNs last_tick = 0;
  while (running_.load(std::memory_order_acquire)) {
    if (const TimeNs t = monotonicNs(); t - last_tick >= 10'000'000) {  // every 10 ms
      last_tick = t;
      tickSinks();
    }
    if (drainOnce() == 0) {
      // Idle: push out what is pending so events are not held back, also
      // when the last batch went out while events were still arriving (a
      // file sink's stdio buffer would hold its tail until the next event).
      emit(true);
      if (unflushed_) {
        for (auto& s : sinks_)
          (void)s->flush();
        unflushed_ = false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    } else {
      emit(false);
    }
  }
}

}  // namespace palisade::events
