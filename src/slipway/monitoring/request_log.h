// RequestLogger: the InferenceService link that writes the access log (one JSON line per request:
// time, id, model, version, route, status, latencies, batch rows) and the payload log (a sampled
// share of requests' inputs and outputs as JSON lines, in files that rotate by size: the raw
// material of the next training set).
//
// Lines are handed to a writer thread through bounded buffers, so a slow disk never holds up a
// request; when a buffer is full lines are dropped and counted (dropped_lines()). Access lines
// go to a buffer per request thread (no lock another request thread takes), which the writer
// merges in time order (lines are stamped as they are queued).
// Thread safety: all methods are safe from any thread; Infer adds the formatting of one line to
// the answer's callback and never blocks on I/O.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "slipway/serving/forwarding_service.h"

namespace slipway::monitoring {

class RequestLogger : public serving::ForwardingService {
 public:
  struct Options {
    serving::InferenceService* inner = nullptr;  // not owned
    std::string access_log;        // a file path, "stderr", or "" for none
    std::string payload_dir;       // folder of payloads*.jsonl, or "" for none
    double payload_sample = 0.01;  // share of successful requests whose payloads are logged
    uint64_t payload_file_bytes = uint64_t{64} << 20;  // a file rotates past this size
    int payload_files = 10;        // rotated files kept besides the current one
    size_t queue_bytes = size_t{64} << 20;  // lines waiting beyond this many bytes are dropped
  };
  static core::Result<std::unique_ptr<RequestLogger>> Create(Options options);
  ~RequestLogger() override;  // writes what is queued, then stops the writer

  uint64_t dropped_lines() const { return dropped_.load(); }

  void Infer(core::InferRequest request, core::InferCallback done) override;

 private:
  explicit RequestLogger(Options options)
      : ForwardingService(options.inner), options_(std::move(options)) {}
  core::Status Open();
  void EnqueueAccess(std::string_view line);
  void EnqueuePayload(std::string_view line);
  void NotePending();
  void WriterLoop();
  void WritePayload(const std::string& text);

  Options options_;
  std::FILE* access_ = nullptr;   // owned unless it is stderr
  std::FILE* payload_ = nullptr;  // owned
  uint64_t payload_bytes_ = 0;    // written to the current payload file; writer thread only
  // Lines waiting for the writer, appended whole (no allocation per line once warm).
  struct alignas(64) Shard {
    std::mutex mu;
    std::string pending;  // guarded by mu
  };
  static constexpr size_t kShards = 8;
  Shard shards_[kShards];        // access lines, a shard per request thread
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> has_pending_{false};  // lines wait; set by the first after the writer looked
  std::string pending_payload_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::atomic<uint64_t> dropped_{0};
  std::thread writer_;
};

}  // namespace slipway::monitoring
