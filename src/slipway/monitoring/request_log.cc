#include "slipway/monitoring/request_log.h"

#include <chrono>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <string_view>
#include <vector>

#include "slipway/core/json_writer.h"
#include "slipway/core/thread_name.h"

namespace slipway::monitoring {

namespace fs = std::filesystem;
using core::Result;
using core::Status;

namespace {

using Clock = std::chrono::steady_clock;

// Writes "2026-11-30T11:02:03.456Z" into `out` and returns it as a view; the part up to the
// seconds is formatted once a second per thread, and nothing is allocated.
struct IsoTime {
  char text[32];
  size_t size = 0;
  std::string_view view() const { return {text, size}; }
};

// A string carried with a request to its answer: inline up to 31 characters (request ids are 16,
// most model names are short), so carrying it allocates nothing; longer ones on the heap.
class ShortText {
 public:
  explicit ShortText(std::string_view s) : size_(s.size()) {
    if (size_ > sizeof(inline_)) {
      heap_.assign(s);
    } else if (size_ > 0) {  // an empty view may hold no pointer, which memcpy must not get
      std::memcpy(inline_, s.data(), size_);
    }
  }
  std::string_view view() const {
    return size_ <= sizeof(inline_) ? std::string_view(inline_, size_) : std::string_view(heap_);
  }

 private:
  size_t size_;
  char inline_[31];
  std::string heap_;
};

// Access lines start with their time, a fixed-width slot filled when the line is queued.
constexpr std::string_view kLineStart = "{\"time\":\"";
constexpr size_t kTimeAt = kLineStart.size();
constexpr std::string_view kTimeSlot = "0000-00-00T00:00:00.000Z";

IsoTime NowIso() {
  thread_local std::time_t cached_secs = -1;
  thread_local char prefix[24];
  thread_local size_t prefix_size = 0;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const int n = std::snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                tm.tm_min, tm.tm_sec);
    prefix_size = n > 0 ? std::min(static_cast<size_t>(n), sizeof(prefix) - 1) : 0;
    cached_secs = secs;
  }
  IsoTime out;
  const int milli = static_cast<int>(ms % 1000);
  std::memcpy(out.text, prefix, prefix_size);
  size_t i = prefix_size;
  out.text[i++] = '.';
  out.text[i++] = static_cast<char>('0' + milli / 100);
  out.text[i++] = static_cast<char>('0' + milli / 10 % 10);
  out.text[i++] = static_cast<char>('0' + milli % 10);
  out.text[i++] = 'Z';
  out.size = i;
  return out;
}

template <typename T>
void Values(core::JsonWriter& w, std::string_view bytes) {
  for (size_t i = 0; i + sizeof(T) <= bytes.size(); i += sizeof(T)) {
    T v;
    std::memcpy(&v, bytes.data() + i, sizeof(T));
    if constexpr (std::is_same_v<T, float>) {
      w.Float(v);
    } else if constexpr (std::is_same_v<T, double>) {
      w.Double(v);
    } else if constexpr (std::is_same_v<T, bool>) {
      w.Bool(v);
    } else if constexpr (std::is_signed_v<T>) {
      w.Int(static_cast<int64_t>(v));
    } else {
      w.Uint(static_cast<uint64_t>(v));
    }
  }
}

void TensorJson(core::JsonWriter& w, const core::Tensor& t) {
  using core::DataType;
  w.Key(t.name());
  w.StartObject();
  w.Key("datatype");
  w.String(core::DataTypeName(t.type()));
  w.Key("shape");
  w.StartArray();
  for (int64_t d : t.shape()) w.Int(d);
  w.EndArray();
  w.Key("data");
  w.StartArray();
  const auto b = t.bytes();
  switch (t.type()) {
    case DataType::kBool: Values<bool>(w, b); break;
    case DataType::kInt8: Values<int8_t>(w, b); break;
    case DataType::kInt16: Values<int16_t>(w, b); break;
    case DataType::kInt32: Values<int32_t>(w, b); break;
    case DataType::kInt64: Values<int64_t>(w, b); break;
    case DataType::kUint8: Values<uint8_t>(w, b); break;
    case DataType::kUint16: Values<uint16_t>(w, b); break;
    case DataType::kUint32: Values<uint32_t>(w, b); break;
    case DataType::kUint64: Values<uint64_t>(w, b); break;
    case DataType::kFp32: Values<float>(w, b); break;
    case DataType::kFp64: Values<double>(w, b); break;
    case DataType::kBytes:
      for (std::string_view e : core::SplitBytesElements(b)) w.String(e);
      break;
    default: break;  // FP16 / BF16: shape and datatype only
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

Result<std::unique_ptr<RequestLogger>> RequestLogger::Create(Options options) {
  if (options.inner == nullptr) return Status::InvalidArgument("RequestLogger needs an inner service");
  if (options.payload_sample < 0 || options.payload_sample > 1) {
    return Status::InvalidArgument("the payload sample share must be within 0..1");
  }
  auto logger = std::unique_ptr<RequestLogger>(new RequestLogger(std::move(options)));
  RETURN_IF_ERROR(logger->Open());
  logger->writer_ = std::thread([l = logger.get()] { l->WriterLoop(); });
  return logger;
}

Status RequestLogger::Open() {
  if (options_.access_log == "stderr") {
    access_ = stderr;
  } else if (!options_.access_log.empty()) {
    access_ = std::fopen(options_.access_log.c_str(), "a");
    if (access_ == nullptr) {
      return Status::InvalidArgument("cannot open the access log '" + options_.access_log +
                                     "': " + std::strerror(errno));
    }
  }
  if (!options_.payload_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options_.payload_dir, ec);
    const auto path = fs::path(options_.payload_dir) / "payloads.jsonl";
    payload_ = std::fopen(path.c_str(), "a");
    if (payload_ == nullptr) {
      return Status::InvalidArgument("cannot open the payload log '" + path.string() +
                                     "': " + std::strerror(errno));
    }
    payload_bytes_ = static_cast<uint64_t>(fs::file_size(path, ec));
  }
  return Status::Ok();
}

RequestLogger::~RequestLogger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (access_ != nullptr && access_ != stderr) std::fclose(access_);
  if (payload_ != nullptr) std::fclose(payload_);
}

void RequestLogger::NotePending() {
  // Only the first line after the writer last looked wakes it (a read, mostly, of a flag that
  // changes a few times a second). Taking mu_ orders the wake after the writer's check.
  if (has_pending_.load() || has_pending_.exchange(true)) return;
  { std::lock_guard<std::mutex> lock(mu_); }
  cv_.notify_one();
}

void RequestLogger::EnqueueAccess(std::string_view line) {
  Shard& q = shards_[core::ThisThreadShard(kShards)];
  {
    std::lock_guard<std::mutex> lock(q.mu);
    if (q.pending.size() + line.size() > options_.queue_bytes / kShards) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const size_t at = q.pending.size();
    q.pending.append(line);
    q.pending.push_back('\n');
    // Stamped under the queue's lock: a line the writer has not taken yet is never older than
    // one it has (see WriterLoop).
    if (line.substr(0, kTimeAt) == kLineStart && line.size() >= kTimeAt + kTimeSlot.size()) {
      const IsoTime now = NowIso();
      if (now.size == kTimeSlot.size()) std::memcpy(q.pending.data() + at + kTimeAt, now.text, now.size);
    }
  }
  NotePending();
}

void RequestLogger::EnqueuePayload(std::string_view line) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_payload_.size() + line.size() > options_.queue_bytes) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_payload_.append(line);
    pending_payload_.push_back('\n');
  }
  NotePending();
}

namespace {

// The time of the access line at `at` (fixed-width ISO 8601, so it orders as text).
std::string_view LineTime(const std::string& text, size_t at) {
  const std::string_view rest = std::string_view(text).substr(at);
  if (rest.substr(0, kTimeAt) != kLineStart) return {};
  const size_t end = rest.find('"', kTimeAt);
  return end == std::string_view::npos ? std::string_view{} : rest.substr(kTimeAt, end - kTimeAt);
}

// Where the lines of `text` (in time order) newer than `cutoff` begin.
size_t FirstLineAfter(const std::string& text, std::string_view cutoff) {
  size_t split = text.size();
  while (split > 0) {
    const size_t start = split >= 2 ? text.rfind('\n', split - 2) : std::string::npos;
    const size_t line = start == std::string::npos ? 0 : start + 1;
    if (LineTime(text, line) <= cutoff) break;
    split = line;
  }
  return split;
}

// Appends the lines of `parts` (each in time order) to `out` in time order, and may leave parts
// emptied. Runs of lines that come before every other part's next line are appended whole.
void MergeByTime(std::vector<std::string>& parts, std::string& out) {
  std::vector<std::pair<std::string*, size_t>> at;  // (part, offset of its next line)
  for (auto& p : parts) {
    if (!p.empty()) at.emplace_back(&p, 0);
  }
  // A part alone (usually: one thread answers a model's requests) is in order already: it is
  // handed over whole, not copied.
  if (at.size() == 1 && out.empty()) return out.swap(*at.front().first);
  while (!at.empty()) {
    if (at.size() == 1) {
      out.append(*at.front().first, at.front().second, std::string::npos);
      return;
    }
    const auto head = [&at](size_t i) { return LineTime(*at[i].first, at[i].second); };
    size_t first = 0;
    for (size_t i = 1; i < at.size(); ++i) {
      if (head(i) < head(first)) first = i;
    }
    std::string_view bound;  // the earliest next line among the other parts
    bool bounded = false;
    for (size_t i = 0; i < at.size(); ++i) {
      if (i == first) continue;
      const std::string_view t = head(i);
      if (!bounded || t < bound) bound = t;
      bounded = true;
    }
    auto& [text, offset] = at[first];
    size_t end = offset;
    do {
      end = std::min(text->find('\n', end), text->size() - 1) + 1;
    } while (end < text->size() && LineTime(*text, end) <= bound);
    out.append(*text, offset, end - offset);
    offset = end;
    if (offset >= text->size()) at.erase(at.begin() + static_cast<std::ptrdiff_t>(first));
  }
}

}  // namespace

void RequestLogger::WritePayload(const std::string& text) {
  if (payload_bytes_ > 0 && payload_bytes_ + text.size() > options_.payload_file_bytes) {
    std::fclose(payload_);
    const fs::path dir(options_.payload_dir);
    // payloads.jsonl -> payloads.1.jsonl -> payloads.2.jsonl ...; the oldest is removed.
    std::error_code ec;
    fs::remove(dir / ("payloads." + std::to_string(options_.payload_files) + ".jsonl"), ec);
    for (int i = options_.payload_files - 1; i >= 1; --i) {
      fs::rename(dir / ("payloads." + std::to_string(i) + ".jsonl"),
                 dir / ("payloads." + std::to_string(i + 1) + ".jsonl"), ec);
    }
    if (options_.payload_files > 0) {
      fs::rename(dir / "payloads.jsonl", dir / "payloads.1.jsonl", ec);
    } else {
      fs::remove(dir / "payloads.jsonl", ec);
    }
    payload_ = std::fopen((dir / "payloads.jsonl").c_str(), "a");
    payload_bytes_ = 0;
    if (payload_ == nullptr) return;
  }
  std::fwrite(text.data(), 1, text.size(), payload_);
  payload_bytes_ += text.size();
}

void RequestLogger::WriterLoop() {
  core::NameThisThread("slipway-log");
  core::LowerThisThreadPriority();
  // Lines are stamped under their queue's lock, so once the writer has read the clock, every line
  // it has not taken from a queue yet is at least that old: the lines stamped later than that
  // reading wait for the next write, and the file stays in time order (unless the clock is set
  // back). Those are the few stamped while the writer was taking the queues.
  std::vector<std::string> parts(kShards + 1);  // the queues' buffers, then the lines kept back
  std::string merged;
  std::string payload;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (parts[kShards].empty()) {
      cv_.wait(lock, [this] { return stopping_ || has_pending_.load(); });
    }
    const bool stop = stopping_;
    payload.swap(pending_payload_);
    lock.unlock();
    const IsoTime cutoff = NowIso();
    // Cleared before the shards are read: a line added after this sets it again.
    has_pending_.store(false);
    for (size_t i = 0; i < kShards; ++i) {
      std::lock_guard<std::mutex> shard_lock(shards_[i].mu);
      parts[i].swap(shards_[i].pending);  // swapped, not copied: the buffers stay warm
    }
    merged.clear();
    MergeByTime(parts, merged);
    for (auto& p : parts) p.clear();
    const size_t ready = stop ? merged.size() : FirstLineAfter(merged, cutoff.view());
    parts[kShards].assign(merged, ready, std::string::npos);
    if (access_ != nullptr && ready > 0) {
      std::fwrite(merged.data(), 1, ready, access_);
      std::fflush(access_);
    }
    // Payload lines go one by one, so a file rotates between lines.
    size_t start = 0;
    while (payload_ != nullptr && start < payload.size()) {
      const size_t end = payload.find('\n', start);
      WritePayload(payload.substr(start, end - start + 1));
      start = end + 1;
    }
    if (payload_ != nullptr) std::fflush(payload_);
    payload.clear();
    lock.lock();
    if (stop) break;
    // Let lines gather for a moment: fewer, larger writes.
    cv_.wait_for(lock, std::chrono::milliseconds(20), [this] { return stopping_; });
  }
}

void RequestLogger::Infer(core::InferRequest request, core::InferCallback done) {
  // options_ (not the FILE pointers, which the writer swaps when a file rotates) says what is on.
  const bool payloads = !options_.payload_dir.empty();
  if (access_ == nullptr && !payloads) return inner_->Infer(std::move(request), std::move(done));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const bool sample = payloads &&
                      std::uniform_real_distribution<double>(0, 1)(rng) < options_.payload_sample;
  const auto start = Clock::now();
  // The inputs still borrow the frontend's buffer when the answer arrives, so a sampled request
  // keeps a view of them (not a copy) for the callback.
  std::shared_ptr<const std::vector<core::Tensor>> inputs;
  if (sample) inputs = std::make_shared<const std::vector<core::Tensor>>(request.inputs);
  const ShortText model(request.model_name);
  const ShortText id(request.id);
  const int64_t asked = request.model_version;
  inner_->Infer(std::move(request), [this, start, inputs, model, id, asked,
                                     done = std::move(done)](Result<core::InferResponse> result) {
    const uint64_t total_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
    if (inputs && result.ok()) {
      const IsoTime now = NowIso();
      core::JsonWriter w;
      w.StartObject();
      w.Key("time");
      w.String(now.view());
      w.Key("id");
      w.String(result->id);
      w.Key("model");
      w.String(model.view());
      w.Key("version");
      w.Int(result->model_version);
      w.Key("inputs");
      w.StartObject();
      for (const auto& t : *inputs) TensorJson(w, t);
      w.EndObject();
      w.Key("outputs");
      w.StartObject();
      for (const auto& t : result->outputs) TensorJson(w, t);
      w.EndObject();
      w.EndObject();
      EnqueuePayload(w.str());
    }
    if (access_ == nullptr) return done(std::move(result));
    // What the access line needs of the answer is kept (inline, no allocation but for an error's
    // message), the answer is passed on, and the line is made after: the caller's response does
    // not wait for its log line.
    const bool ok = result.ok();
    const ShortText answer_id(ok ? std::string_view(result->id) : id.view());
    const ShortText route(ok ? std::string_view(result->route) : std::string_view());
    const int64_t version = ok ? result->model_version : asked;
    const uint64_t queue_us = ok ? result->queue_ns / 1000 : 0;
    const uint64_t compute_us = ok ? result->compute_ns / 1000 : 0;
    const int64_t rows = ok ? result->batch_rows : 0;
    const Status failure = ok ? Status::Ok() : result.status();
    done(std::move(result));
    // One buffer per thread, reused: formatting a line allocates nothing once warm. The keys
    // are fixed, so the line is built from literal pieces rather than through a JsonWriter.
    thread_local std::string line;
    line.clear();
    line.append(kLineStart).append(kTimeSlot);  // stamped when the line is queued
    line.append("\",\"id\":");
    core::AppendJsonString(line, answer_id.view());
    line.append(",\"model\":");
    core::AppendJsonString(line, model.view());
    line.append(",\"version\":");
    core::AppendJsonInt(line, version);
    line.append(",\"route\":");
    core::AppendJsonString(line, route.view());
    line.append(",\"status\":");
    core::AppendJsonString(line, ok ? "OK" : core::StatusCodeName(failure.code()));
    if (!ok) {
      line.append(",\"error\":");
      core::AppendJsonString(line, failure.message());
    }
    // Milliseconds to the microsecond.
    line.append(",\"total_ms\":");
    core::AppendJsonScaled(line, static_cast<int64_t>(total_ns / 1000), 3);
    line.append(",\"queue_ms\":");
    core::AppendJsonScaled(line, static_cast<int64_t>(queue_us), 3);
    line.append(",\"compute_ms\":");
    core::AppendJsonScaled(line, static_cast<int64_t>(compute_us), 3);
    line.append(",\"batch_rows\":");
    core::AppendJsonInt(line, rows);
    line.push_back('}');
    EnqueueAccess(line);
  });
}

}  // namespace slipway::monitoring
