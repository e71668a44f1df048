// slipway_loadgen: a closed-loop load generator for Slipway (or any KServe v2 server).
//
//   slipway_loadgen --protocol grpc --port 8001 --http-port 8000 --model breast_cancer
//                   --concurrency 8 --duration 5 --warmup 1
//
// Each of C worker threads owns one keep-alive HTTP connection (or one gRPC channel) and sends
// one inference request after another for W + D seconds; calls finishing in the last D seconds
// are measured. Every response's status is checked (HTTP 200 with outputs, gRPC OK with outputs);
// failures are counted, never retried. Prints one JSON line: p50/p90/p99/max/mean latency (µs),
// throughput (req/s), requests, errors and the generator's own CPU seconds in the window.
//
// The request is one fixed random batch-1 input per model input (names, datatypes and shapes
// from GET /v2/models/<m> over HTTP, or the gRPC ModelMetadata call when no HTTP port is known;
// dynamic dimensions become 1). Datatypes: FP32, FP64, INT32, INT64, BOOL. With --distinct N,
// each worker cycles through N different random requests of its own instead (live traffic
// varies, and whatever looks at the values, drift detection say, works as it would on it). The request
// bytes are built once, so the client does no per-request encoding.
//   http-json    KServe v2 JSON tensors, {"inputs":[{"name","datatype","shape","data":[...]}]}
//   http-binary  Triton binary extension: JSON header (parameters.binary_data_size per input,
//                binary_data_output=true) + raw little-endian bytes, Inference-Header-Content-Length
//   grpc         ModelInfer with raw_input_contents; message size limits lifted
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "grpc_service.grpc.pb.h"
#include "latency_stats.h"

namespace {

using slipway::bench::Clock;
using slipway::bench::JsonEscape;
using slipway::bench::Recorder;
using slipway::bench::Summary;
using slipway::bench::Window;

struct Options {
  std::string protocol;  // http-json | http-binary | grpc
  std::string host = "127.0.0.1";
  int port = 0;
  int http_port = 0;  // for metadata; defaults to --port for the HTTP protocols
  std::string model;
  std::string version;  // empty: the server's choice
  int concurrency = 1;
  double duration_s = 5;
  double warmup_s = 1;
  double timeout_s = 10;
  unsigned seed = 42;
  int distinct = 1;  // different random requests each worker cycles through
};

[[noreturn]] void Usage(const std::string& msg) {
  std::fprintf(stderr,
               "slipway_loadgen: %s\nusage: slipway_loadgen --protocol http-json|http-binary|grpc "
               "--port N --model NAME [--host H] [--http-port N] [--model-version V] "
               "[--concurrency C] [--duration S] [--warmup S] [--timeout S] [--seed N] "
               "[--distinct N]\n",
               msg.c_str());
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage("missing value after " + a);
      return argv[++i];
    };
    if (a == "--protocol") o.protocol = value();
    else if (a == "--host") o.host = value();
    else if (a == "--port") o.port = std::atoi(value().c_str());
    else if (a == "--http-port") o.http_port = std::atoi(value().c_str());
    else if (a == "--model") o.model = value();
    else if (a == "--model-version") o.version = value();
    else if (a == "--concurrency") o.concurrency = std::atoi(value().c_str());
    else if (a == "--duration") o.duration_s = std::atof(value().c_str());
    else if (a == "--warmup") o.warmup_s = std::atof(value().c_str());
    else if (a == "--timeout") o.timeout_s = std::atof(value().c_str());
    else if (a == "--seed") o.seed = static_cast<unsigned>(std::atoi(value().c_str()));
    else if (a == "--distinct") o.distinct = std::atoi(value().c_str());
    else Usage("unknown argument " + a);
  }
  if (o.protocol != "http-json" && o.protocol != "http-binary" && o.protocol != "grpc") {
    Usage("--protocol must be http-json, http-binary or grpc, not '" + o.protocol + "'");
  }
  if (o.port <= 0 || o.model.empty()) Usage("--port and --model are required");
  if (o.concurrency < 1 || o.duration_s <= 0 || o.warmup_s < 0 || o.timeout_s <= 0 ||
      o.distinct < 1) {
    Usage("concurrency and distinct must be >= 1, duration and timeout > 0, warmup >= 0");
  }
  if (o.http_port == 0 && o.protocol != "grpc") o.http_port = o.port;
  return o;
}

// One model input with its fixed random batch-1 value.
struct Input {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian, row-major
  std::string json;   // the same values as a JSON array body
};

size_t ElementSize(const std::string& dt) {
  if (dt == "FP32" || dt == "INT32") return 4;
  if (dt == "FP64" || dt == "INT64") return 8;
  if (dt == "BOOL") return 1;
  return 0;
}

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Fills `in.bytes` and `in.json` with random values for its datatype and shape.
void Fill(Input& in, std::mt19937& rng) {
  std::uniform_real_distribution<float> real(0.0f, 1.0f);
  std::uniform_int_distribution<int> small(0, 9);
  size_t count = 1;
  for (auto& d : in.shape) {
    if (d < 0) d = 1;
    count *= static_cast<size_t>(d);
  }
  const size_t elem = ElementSize(in.datatype);
  in.bytes.resize(count * elem);
  in.json = "[";
  for (size_t k = 0; k < count; ++k) {
    if (k) in.json += ',';
    char* p = in.bytes.data() + k * elem;
    if (in.datatype == "FP32") {
      const float v = real(rng);
      std::memcpy(p, &v, 4);
      AppendNumber(in.json, v);
    } else if (in.datatype == "FP64") {
      const double v = real(rng);
      std::memcpy(p, &v, 8);
      AppendNumber(in.json, v);
    } else if (in.datatype == "INT32") {
      const int32_t v = small(rng);
      std::memcpy(p, &v, 4);
      AppendNumber(in.json, v);
    } else if (in.datatype == "INT64") {
      const int64_t v = small(rng);
      std::memcpy(p, &v, 8);
      AppendNumber(in.json, v);
    } else {  // BOOL
      const bool v = small(rng) % 2 != 0;
      *p = v ? 1 : 0;
      in.json += v ? "true" : "false";
    }
  }
  in.json += "]";
}

std::string ModelPath(const Options& o) {
  std::string p = "/v2/models/" + o.model;
  if (!o.version.empty()) p += "/versions/" + o.version;
  return p;
}

std::vector<Input> InputsFromHttp(const Options& o) {
  httplib::Client cli(o.host, o.http_port);
  cli.set_connection_timeout(static_cast<time_t>(o.timeout_s));
  auto res = cli.Get(ModelPath(o));
  if (!res) Usage("GET " + ModelPath(o) + " failed: " + httplib::to_string(res.error()));
  if (res->status != 200) {
    Usage("GET " + ModelPath(o) + " answered " + std::to_string(res->status) + ": " + res->body);
  }
  std::vector<Input> inputs;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(res->body).get(doc)) Usage("model metadata is not JSON: " + res->body);
  simdjson::dom::array arr;
  if (doc["inputs"].get_array().get(arr)) Usage("model metadata has no inputs: " + res->body);
  for (simdjson::dom::element t : arr) {
    Input in;
    std::string_view name, dt;
    simdjson::dom::array shape;
    if (t["name"].get(name) || t["datatype"].get(dt) || t["shape"].get(shape)) {
      Usage("model metadata input lacks name, datatype or shape: " + res->body);
    }
    in.name = name;
    in.datatype = dt;
    for (simdjson::dom::element d : shape) {
      int64_t v = 0;
      if (d.get(v)) Usage("model metadata shape is not integers: " + res->body);
      in.shape.push_back(v);
    }
    inputs.push_back(std::move(in));
  }
  return inputs;
}

std::shared_ptr<grpc::Channel> MakeChannel(const Options& o, int index) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Channels with equal arguments may share one connection; keep each worker's its own.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("slipway.loadgen.worker", index);
  return grpc::CreateCustomChannel(o.host + ":" + std::to_string(o.port),
                                   grpc::InsecureChannelCredentials(), args);
}

std::vector<Input> InputsFromGrpc(const Options& o) {
  auto stub = inference::GRPCInferenceService::NewStub(MakeChannel(o, -1));
  inference::ModelMetadataRequest req;
  req.set_name(o.model);
  req.set_version(o.version);
  inference::ModelMetadataResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000)));
  grpc::Status st = stub->ModelMetadata(&ctx, req, &resp);
  if (!st.ok()) Usage("gRPC ModelMetadata failed: " + st.error_message());
  std::vector<Input> inputs;
  for (const auto& t : resp.inputs()) {
    inputs.push_back(Input{t.name(), t.datatype(), {t.shape().begin(), t.shape().end()}, {}, {}});
  }
  return inputs;
}

std::string ShapeJson(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? "," : "") + std::to_string(shape[k]);
  return s + "]";
}

std::string JsonBody(const std::vector<Input>& inputs) {
  std::string body = "{\"inputs\":[";
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Input& in = inputs[i];
    body += (i ? "," : "") + std::string("{\"name\":\"") + JsonEscape(in.name) +
            "\",\"datatype\":\"" + in.datatype + "\",\"shape\":" + ShapeJson(in.shape) +
            ",\"data\":" + in.json + "}";
  }
  return body + "]}";
}

// Returns the binary request body; `header_length` receives the JSON header's length.
std::string BinaryBody(const std::vector<Input>& inputs, size_t* header_length) {
  std::string body = "{\"inputs\":[";
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Input& in = inputs[i];
    body += (i ? "," : "") + std::string("{\"name\":\"") + JsonEscape(in.name) +
            "\",\"datatype\":\"" + in.datatype + "\",\"shape\":" + ShapeJson(in.shape) +
            ",\"parameters\":{\"binary_data_size\":" + std::to_string(in.bytes.size()) + "}}";
  }
  body += "],\"parameters\":{\"binary_data_output\":true}}";
  *header_length = body.size();
  for (const Input& in : inputs) body += in.bytes;
  return body;
}

// One worker's protocol client; Call() sends one request and says whether it succeeded.
class Worker {
 public:
  virtual ~Worker() = default;
  virtual bool Call(std::string* error) = 0;
  virtual size_t request_bytes() const = 0;  // body (HTTP) or serialised message (gRPC) size
};

class HttpWorker : public Worker {
 public:
  HttpWorker(const Options& o, const std::vector<std::vector<Input>>& requests, bool binary)
      : client_(o.host, o.port), path_(ModelPath(o) + "/infer"), binary_(binary) {
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);
    client_.set_connection_timeout(static_cast<time_t>(o.timeout_s));
    client_.set_read_timeout(static_cast<time_t>(o.timeout_s));
    client_.set_write_timeout(static_cast<time_t>(o.timeout_s));
    size_t header_length = 0;  // the same for every request: only the values differ
    for (const auto& inputs : requests) {
      bodies_.push_back(binary ? BinaryBody(inputs, &header_length) : JsonBody(inputs));
    }
    if (binary) {
      headers_.emplace("Inference-Header-Content-Length", std::to_string(header_length));
      content_type_ = "application/octet-stream";
    } else {
      content_type_ = "application/json";
    }
  }

  bool Call(std::string* error) override {
    const std::string& body = bodies_[next_++ % bodies_.size()];
    auto res = client_.Post(path_, headers_, body, content_type_);
    if (!res) {
      *error = "HTTP request failed: " + httplib::to_string(res.error());
      return false;
    }
    if (res->status != 200) {
      *error = "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 300);
      return false;
    }
    if (binary_) {
      const std::string h = res->get_header_value("Inference-Header-Content-Length");
      const size_t n = h.empty() ? 0 : std::strtoull(h.c_str(), nullptr, 10);
      if (h.empty() || n == 0 || n >= res->body.size() || res->body[0] != '{') {
        *error = "binary response without a JSON header and binary outputs";
        return false;
      }
    } else if (res->body.find("\"outputs\"") == std::string::npos) {
      *error = "JSON response without outputs: " + res->body.substr(0, 300);
      return false;
    }
    return true;
  }
  size_t request_bytes() const override { return bodies_.front().size(); }

 private:
  httplib::Client client_;
  std::string path_;
  bool binary_;
  std::vector<std::string> bodies_;
  size_t next_ = 0;
  httplib::Headers headers_;
  std::string content_type_;
};

class GrpcWorker : public Worker {
 public:
  GrpcWorker(const Options& o, const std::vector<std::vector<Input>>& requests, int index)
      : stub_(inference::GRPCInferenceService::NewStub(MakeChannel(o, index))),
        timeout_(std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000))) {
    for (const auto& inputs : requests) {
      inference::ModelInferRequest& request = requests_.emplace_back();
      request.set_model_name(o.model);
      request.set_model_version(o.version);
      for (const Input& in : inputs) {
        auto* t = request.add_inputs();
        t->set_name(in.name);
        t->set_datatype(in.datatype);
        for (int64_t d : in.shape) t->add_shape(d);
        request.add_raw_input_contents(in.bytes);
      }
    }
  }

  bool Call(std::string* error) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
    response_.Clear();
    grpc::Status st = stub_->ModelInfer(&ctx, requests_[next_++ % requests_.size()], &response_);
    if (!st.ok()) {
      *error = "gRPC " + std::to_string(st.error_code()) + ": " + st.error_message();
      return false;
    }
    if (response_.outputs_size() == 0) {
      *error = "gRPC response without outputs";
      return false;
    }
    return true;
  }
  size_t request_bytes() const override { return requests_.front().ByteSizeLong(); }

 private:
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::chrono::milliseconds timeout_;
  std::vector<inference::ModelInferRequest> requests_;
  size_t next_ = 0;
  inference::ModelInferResponse response_;
};

}  // namespace

int main(int argc, char** argv) {
  const Options opt = ParseArgs(argc, argv);
  std::vector<Input> inputs = opt.http_port > 0 ? InputsFromHttp(opt) : InputsFromGrpc(opt);
  if (inputs.empty()) Usage("model '" + opt.model + "' has no inputs");
  for (const Input& in : inputs) {
    if (ElementSize(in.datatype) == 0) {
      Usage("input '" + in.name + "' has datatype " + in.datatype +
            ", which the load generator does not support");
    }
  }
  // One fixed request shared by every worker; with --distinct N, N different ones per worker
  // (seeded apart, so the workers do not send the same values in step).
  const auto make_requests = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::vector<Input>> requests(static_cast<size_t>(opt.distinct), inputs);
    for (auto& request : requests) {
      for (Input& in : request) Fill(in, rng);
    }
    return requests;
  };
  const std::vector<std::vector<Input>> shared = make_requests(opt.seed);
  std::string input_desc;
  for (const Input& in : shared.front()) {
    input_desc += (input_desc.empty() ? "" : ";") + in.name + ":" + in.datatype + ShapeJson(in.shape);
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < opt.concurrency; ++i) {
    const auto own = opt.distinct > 1 && i > 0
                         ? make_requests(opt.seed + static_cast<unsigned>(i))
                         : std::vector<std::vector<Input>>();
    const auto& requests = own.empty() ? shared : own;
    if (opt.protocol == "grpc") {
      workers.push_back(std::make_unique<GrpcWorker>(opt, requests, i));
    } else {
      workers.push_back(std::make_unique<HttpWorker>(opt, requests, opt.protocol == "http-binary"));
    }
  }
  const size_t request_bytes = workers[0]->request_bytes();

  // Phase 1: every worker makes one call, which opens its connection, before the clock starts,
  // so connection set-up (reported as first_call_max_us) stays out of the steady-state numbers.
  // Phase 2: warm-up, then the measured window.
  std::vector<std::string> first_error(static_cast<size_t>(opt.concurrency));
  std::vector<double> first_call_us(static_cast<size_t>(opt.concurrency), 0.0);
  std::atomic<int> first_call_failures{0};
  std::latch connected(opt.concurrency);
  std::latch go(1);
  Window window{};
  std::vector<Recorder> recorders;
  std::vector<std::thread> threads;
  for (int i = 0; i < opt.concurrency; ++i) {
    threads.emplace_back([&, i] {
      const auto idx = static_cast<size_t>(i);
      std::string error;
      const auto first_start = Clock::now();
      if (!workers[idx]->Call(&error)) {
        ++first_call_failures;
        first_error[idx] = error;
      }
      first_call_us[idx] =
          std::chrono::duration<double, std::micro>(Clock::now() - first_start).count();
      connected.count_down();
      go.wait();
      Recorder& rec = recorders[idx];
      while (rec.Running()) {
        const auto start = Clock::now();
        const bool ok = workers[idx]->Call(&error);
        if (!ok && first_error[idx].empty()) first_error[idx] = error;
        rec.Finish(start, ok);
      }
    });
  }
  connected.wait();
  window = Window::Start(opt.warmup_s, opt.duration_s);
  for (int i = 0; i < opt.concurrency; ++i) recorders.emplace_back(window);
  go.count_down();
  std::this_thread::sleep_until(window.measure_begin);
  const double cpu0 = slipway::bench::ProcessCpuSeconds();
  std::this_thread::sleep_until(window.measure_end);
  const double cpu1 = slipway::bench::ProcessCpuSeconds();
  for (auto& t : threads) t.join();

  std::string error;
  for (const auto& e : first_error) {
    if (!e.empty()) {
      error = e;
      break;
    }
  }
  if (!error.empty()) std::fprintf(stderr, "slipway_loadgen: first error: %s\n", error.c_str());
  const Summary s = Summary::Merge(recorders, opt.duration_s);
  std::printf("{\"tool\":\"slipway_loadgen\",\"protocol\":\"%s\",\"model\":\"%s\",\"inputs\":\"%s\","
              "\"request_bytes\":%zu,\"distinct\":%d,\"concurrency\":%d,%s,\"client_cpu_s\":%.3f,"
              "\"first_call_max_us\":%.1f,\"first_call_errors\":%d,\"first_error\":\"%s\"}\n",
              opt.protocol.c_str(), JsonEscape(opt.model).c_str(), JsonEscape(input_desc).c_str(),
              request_bytes, opt.distinct, opt.concurrency, s.JsonFields().c_str(), cpu1 - cpu0,
              *std::max_element(first_call_us.begin(), first_call_us.end()),
              first_call_failures.load(), JsonEscape(error).c_str());
  std::fflush(stdout);
  return s.errors == 0 && first_call_failures == 0 && s.requests > 0 ? 0 : 1;
}
