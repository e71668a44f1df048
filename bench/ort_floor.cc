// ort_floor: the in-process ONNX Runtime floor that Slipway's serving overhead is measured against.
//
//   ort_floor --model examples/models/breast_cancer/1/model.onnx --concurrency 8 --duration 5
//
// Runs the model with the session options the server uses (intra-op threads 1, inter-op 1,
// sequential execution, graph optimisation ALL, session.intra_op.allow_spinning=0) on one fixed
// random batch-1 input, closed loop, from C threads for D seconds after W seconds of warm-up, and
// prints one JSON line: p50/p90/p99/max/mean latency (µs) and throughput (runs/s).
//
// Sessions: S = min(C, --instances) sessions, --instances defaulting to the hardware threads (the
// server's default instance count with 1 intra-op thread). Thread i uses session i mod S (round
// robin). A session runs one Run() at a time, as the server's InstancePool runs one call per
// instance, and is granted to the threads waiting for it in FIFO order (a ticket lock; a plain
// std::mutex lets one thread keep re-taking it for a whole time slice). For C > S threads wait for
// their session, and how long depends on how the OS schedules C threads on the cores: at C > S
// read the floor's throughput, not its latency.
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "latency_stats.h"

namespace {

using slipway::bench::Clock;
using slipway::bench::Recorder;
using slipway::bench::Summary;
using slipway::bench::Window;

struct Options {
  std::string model;
  int concurrency = 1;
  double duration_s = 5;
  double warmup_s = 1;
  int instances = 0;  // 0: hardware threads
  int intra_op_threads = 1;
  bool allow_spinning = false;
  unsigned seed = 42;
  int64_t batch = 1;  // rows in dimension 0 when it is dynamic
};

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "ort_floor: %s\nusage: ort_floor --model FILE.onnx [--concurrency C] [--duration S] "
               "[--warmup S] [--instances N] [--intra-op-threads N] [--allow-spinning] [--batch B] "
               "[--seed N]\n",
               msg);
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--model") o.model = value();
    else if (a == "--concurrency") o.concurrency = std::atoi(value().c_str());
    else if (a == "--duration") o.duration_s = std::atof(value().c_str());
    else if (a == "--warmup") o.warmup_s = std::atof(value().c_str());
    else if (a == "--instances") o.instances = std::atoi(value().c_str());
    else if (a == "--batch") o.batch = std::atoll(value().c_str());
    else if (a == "--intra-op-threads") o.intra_op_threads = std::atoi(value().c_str());
    else if (a == "--allow-spinning") o.allow_spinning = true;
    else if (a == "--seed") o.seed = static_cast<unsigned>(std::atoi(value().c_str()));
    else Usage(("unknown argument " + a).c_str());
  }
  if (o.model.empty()) Usage("--model is required");
  if (o.batch < 1) Usage("--batch must be >= 1");
  if (o.concurrency < 1 || o.duration_s <= 0 || o.warmup_s < 0 || o.intra_op_threads < 1) {
    Usage("concurrency and intra-op threads must be >= 1, duration > 0, warmup >= 0");
  }
  if (o.instances <= 0) o.instances = std::max(1u, std::thread::hardware_concurrency());
  return o;
}

// One input of the model, filled once with random values of its type.
struct InputBuffer {
  std::string name;
  ONNXTensorElementDataType type;
  std::vector<int64_t> shape;
  std::vector<char> bytes;
};

size_t ElementSize(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return 8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return 1;
    default: return 0;
  }
}

std::vector<InputBuffer> MakeInputs(Ort::Session& session, unsigned seed, int64_t batch) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> real(0.0f, 1.0f);
  std::uniform_int_distribution<int> small(0, 9);
  Ort::AllocatorWithDefaultOptions alloc;
  std::vector<InputBuffer> inputs;
  for (size_t i = 0; i < session.GetInputCount(); ++i) {
    InputBuffer in;
    in.name = session.GetInputNameAllocated(i, alloc).get();
    Ort::TypeInfo type_info = session.GetInputTypeInfo(i);  // must outlive `info`
    auto info = type_info.GetTensorTypeAndShapeInfo();
    in.type = info.GetElementType();
    in.shape = info.GetShape();
    size_t count = 1;
    for (size_t k = 0; k < in.shape.size(); ++k) {
      auto& d = in.shape[k];
      if (d < 0) d = k == 0 ? batch : 1;  // a dynamic dim 0 is the batch; other dynamic dims 1
      count *= static_cast<size_t>(d);
    }
    const size_t elem = ElementSize(in.type);
    if (elem == 0) {
      std::fprintf(stderr, "ort_floor: input '%s' has element type %d, which is not supported\n",
                   in.name.c_str(), static_cast<int>(in.type));
      std::exit(1);
    }
    in.bytes.resize(count * elem);
    for (size_t k = 0; k < count; ++k) {
      char* p = in.bytes.data() + k * elem;
      switch (in.type) {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: { float v = real(rng); std::memcpy(p, &v, 4); break; }
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: { double v = real(rng); std::memcpy(p, &v, 8); break; }
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: { int32_t v = small(rng); std::memcpy(p, &v, 4); break; }
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: { int64_t v = small(rng); std::memcpy(p, &v, 8); break; }
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: *p = static_cast<char>(small(rng) % 2); break;
        default: *p = static_cast<char>(small(rng)); break;
      }
    }
    inputs.push_back(std::move(in));
  }
  return inputs;
}

// A session used by one or more threads, one Run at a time, granted in arrival order.
class SharedSession {
 public:
  explicit SharedSession(std::unique_ptr<Ort::Session> s) : session_(std::move(s)) {}
  Ort::Session& session() { return *session_; }

  // Blocks until it is the caller's turn; the caller must call Release() after its Run.
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t ticket = next_ticket_++;
    cv_.wait(lock, [&] { return serving_ == ticket; });
  }
  void Release() {
    bool waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++serving_;
      waiters = next_ticket_ != serving_;
    }
    if (waiters) cv_.notify_all();
  }

 private:
  std::unique_ptr<Ort::Session> session_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ticket_ = 0;  // guarded by mu_
  uint64_t serving_ = 0;      // guarded by mu_
};

}  // namespace

int main(int argc, char** argv) {
  const Options opt = ParseArgs(argc, argv);
  try {
    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "ort_floor");
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(opt.intra_op_threads);
    so.SetInterOpNumThreads(1);
    so.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
    so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    so.AddConfigEntry("session.intra_op.allow_spinning", opt.allow_spinning ? "1" : "0");

    const int sessions = std::min(opt.concurrency, opt.instances);
    std::vector<std::unique_ptr<SharedSession>> pool;
    for (int i = 0; i < sessions; ++i) {
      pool.push_back(std::make_unique<SharedSession>(
          std::make_unique<Ort::Session>(env, opt.model.c_str(), so)));
    }
    // The same input for every thread and session.
    const std::vector<InputBuffer> inputs = MakeInputs(pool[0]->session(), opt.seed, opt.batch);
    std::vector<std::string> output_names;
    {
      Ort::AllocatorWithDefaultOptions alloc;
      for (size_t i = 0; i < pool[0]->session().GetOutputCount(); ++i) {
        output_names.push_back(pool[0]->session().GetOutputNameAllocated(i, alloc).get());
      }
    }

    const Window window = Window::Start(opt.warmup_s, opt.duration_s);
    std::vector<Recorder> recorders;
    for (int t = 0; t < opt.concurrency; ++t) recorders.emplace_back(window);
    std::vector<std::thread> threads;
    std::vector<std::string> failures(static_cast<size_t>(opt.concurrency));
    for (int t = 0; t < opt.concurrency; ++t) {
      threads.emplace_back([&, t] {
        SharedSession& shared = *pool[static_cast<size_t>(t % sessions)];
        Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
        // Per-thread copies of the input bytes, wrapped without copying per call.
        std::vector<std::vector<char>> bytes;
        std::vector<Ort::Value> values;
        std::vector<const char*> in_names;
        std::vector<const char*> out_names;
        for (const auto& in : inputs) {
          bytes.push_back(in.bytes);
          values.push_back(Ort::Value::CreateTensor(mem, bytes.back().data(), bytes.back().size(),
                                                    in.shape.data(), in.shape.size(), in.type));
          in_names.push_back(in.name.c_str());
        }
        for (const auto& n : output_names) out_names.push_back(n.c_str());
        Recorder& rec = recorders[static_cast<size_t>(t)];
        while (rec.Running()) {
          const auto start = Clock::now();
          bool ok = true;
          shared.Acquire();
          try {
            auto out = shared.session().Run(Ort::RunOptions{nullptr}, in_names.data(),
                                           values.data(), values.size(), out_names.data(),
                                           out_names.size());
            ok = out.size() == out_names.size();
          } catch (const Ort::Exception& e) {
            ok = false;
            if (failures[static_cast<size_t>(t)].empty()) failures[static_cast<size_t>(t)] = e.what();
          }
          shared.Release();
          rec.Finish(start, ok);
        }
      });
    }
    std::this_thread::sleep_until(window.measure_begin);
    const double cpu0 = slipway::bench::ProcessCpuSeconds();
    std::this_thread::sleep_until(window.measure_end);
    const double cpu1 = slipway::bench::ProcessCpuSeconds();
    for (auto& th : threads) th.join();
    for (const auto& f : failures) {
      if (!f.empty()) std::fprintf(stderr, "ort_floor: Run failed: %s\n", f.c_str());
    }

    const Summary s = Summary::Merge(recorders, opt.duration_s);
    std::string shape;
    for (const auto& in : inputs) {
      shape += (shape.empty() ? "" : ";") + in.name + "[";
      for (size_t k = 0; k < in.shape.size(); ++k) {
        shape += (k ? "," : "") + std::to_string(in.shape[k]);
      }
      shape += "]";
    }
    std::printf("{\"tool\":\"ort_floor\",\"protocol\":\"in-process\",\"model\":\"%s\","
                "\"inputs\":\"%s\",\"batch\":%lld,\"concurrency\":%d,\"sessions\":%d,\"intra_op_threads\":%d,"
                "\"inter_op_threads\":1,\"allow_spinning\":%s,\"ort_version\":\"%s\",%s,"
                "\"client_cpu_s\":%.3f}\n",
                slipway::bench::JsonEscape(opt.model).c_str(),
                slipway::bench::JsonEscape(shape).c_str(), static_cast<long long>(opt.batch),
                opt.concurrency, sessions,
                opt.intra_op_threads, opt.allow_spinning ? "true" : "false",
                Ort::GetVersionString().c_str(), s.JsonFields().c_str(), cpu1 - cpu0);
    return s.errors == 0 && s.requests > 0 ? 0 : 1;
  } catch (const Ort::Exception& e) {
    std::fprintf(stderr, "ort_floor: %s\n", e.what());
    return 1;
  }
}
