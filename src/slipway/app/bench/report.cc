#include "slipway/app/bench/report.h"

#include <cstdio>
#include <fstream>

#include "slipway/core/json_writer.h"

namespace slipway::app::bench {
namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string ErrorsText(const PointResult& p) {
  std::string s;
  for (const auto& [kind, count] : p.errors_by_kind) {
    s += (s.empty() ? "" : ";") + kind + "=" + std::to_string(count);
  }
  return s;
}

std::string PointLabel(const BenchRun& run, const PointResult& p) {
  return run.open_loop ? "rate " + Fixed(p.request_rate, 1) + "/s"
                       : "concurrency " + std::to_string(p.concurrency);
}

}  // namespace

std::string FormatTable(const BenchRun& run) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "model %s%s%s, protocol %s, batch size %d, %s\n",
                run.model.c_str(), run.model_version.empty() ? "" : " version ",
                run.model_version.c_str(), run.protocol.c_str(), run.batch_size,
                run.open_loop ? "open loop" : "closed loop");
  out += line;
  std::snprintf(line, sizeof line,
                "%-18s %12s %9s %7s %10s %10s %10s %10s %10s %10s %10s %8s  %s\n", "point",
                "infer/s", "requests", "errors", "p50_us", "p90_us", "p99_us", "p99.9_us", "max_us",
                "srv_queue", "srv_comp", "stable", "errors by kind");
  out += line;
  for (const PointResult& p : run.points) {
    const std::string queue = p.server_stats ? Fixed(p.server_queue_us, 1) : "-";
    const std::string compute = p.server_stats ? Fixed(p.server_compute_us, 1) : "-";
    const std::string stable = (p.stable ? "yes/" : "no/") + std::to_string(p.windows);
    std::snprintf(line, sizeof line,
                  "%-18s %12.1f %9llu %7llu %10.1f %10.1f %10.1f %10.1f %10.1f %10s %10s %8s  %s\n",
                  PointLabel(run, p).c_str(), p.throughput_infer_per_s,
                  static_cast<unsigned long long>(p.requests),
                  static_cast<unsigned long long>(p.errors), p.latency.p50_us, p.latency.p90_us,
                  p.latency.p99_us, p.latency.p999_us, p.latency.max_us, queue.c_str(),
                  compute.c_str(), stable.c_str(), ErrorsText(p).c_str());
    out += line;
  }
  return out;
}

std::string FormatCsv(const BenchRun& run) {
  std::string out =
      "concurrency,request_rate,throughput_infer_per_s,requests_per_s,requests,errors,p50_us,"
      "p90_us,p99_us,p99_9_us,max_us,mean_us,seconds,windows,stable,server_queue_us,"
      "server_compute_us,errors_by_kind\n";
  for (const PointResult& p : run.points) {
    out += std::to_string(p.concurrency) + "," + Fixed(p.request_rate, 3) + "," +
           Fixed(p.throughput_infer_per_s, 3) + "," + Fixed(p.requests_per_s, 3) + "," +
           std::to_string(p.requests) + "," + std::to_string(p.errors) + "," +
           Fixed(p.latency.p50_us, 3) + "," + Fixed(p.latency.p90_us, 3) + "," +
           Fixed(p.latency.p99_us, 3) + "," + Fixed(p.latency.p999_us, 3) + "," +
           Fixed(p.latency.max_us, 3) + "," + Fixed(p.latency.mean_us, 3) + "," +
           Fixed(p.seconds, 3) + "," + std::to_string(p.windows) + "," +
           (p.stable ? "true" : "false") + "," +
           (p.server_stats ? Fixed(p.server_queue_us, 3) : "") + "," +
           (p.server_stats ? Fixed(p.server_compute_us, 3) : "") + ",\"" + ErrorsText(p) + "\"\n";
  }
  return out;
}

std::string FormatJson(const BenchRun& run) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("model");
  w.String(run.model);
  w.Key("model_version");
  w.String(run.model_version);
  w.Key("protocol");
  w.String(run.protocol);
  w.Key("mode");
  w.String(run.open_loop ? "open_loop" : "closed_loop");
  w.Key("batch_size");
  w.Int(run.batch_size);
  w.Key("server_statistics");
  w.Bool(run.server_statistics);
  w.Key("inputs");
  w.StartArray();
  for (const InputTensor& in : run.inputs) {
    w.StartObject();
    w.Key("name");
    w.String(in.name);
    w.Key("datatype");
    w.String(in.datatype);
    w.Key("shape");
    w.StartArray();
    for (int64_t d : in.shape) w.Int(d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("points");
  w.StartArray();
  for (const PointResult& p : run.points) {
    w.StartObject();
    w.Key("concurrency");
    w.Int(p.concurrency);
    w.Key("request_rate");
    w.Double(p.request_rate);
    w.Key("throughput_infer_per_s");
    w.Double(p.throughput_infer_per_s);
    w.Key("requests_per_s");
    w.Double(p.requests_per_s);
    w.Key("requests");
    w.Uint(p.requests);
    w.Key("errors");
    w.Uint(p.errors);
    w.Key("errors_by_kind");
    w.StartObject();
    for (const auto& [kind, count] : p.errors_by_kind) {
      w.Key(kind);
      w.Uint(count);
    }
    w.EndObject();
    w.Key("latency_us");
    w.StartObject();
    w.Key("p50");
    w.Double(p.latency.p50_us);
    w.Key("p90");
    w.Double(p.latency.p90_us);
    w.Key("p99");
    w.Double(p.latency.p99_us);
    w.Key("p99_9");
    w.Double(p.latency.p999_us);
    w.Key("max");
    w.Double(p.latency.max_us);
    w.Key("mean");
    w.Double(p.latency.mean_us);
    w.EndObject();
    w.Key("seconds");
    w.Double(p.seconds);
    w.Key("windows");
    w.Int(p.windows);
    w.Key("stable");
    w.Bool(p.stable);
    w.Key("window_throughputs");
    w.StartArray();
    for (double t : p.window_throughputs) w.Double(t);
    w.EndArray();
    w.Key("server");
    if (p.server_stats) {
      w.StartObject();
      w.Key("queue_us");
      w.Double(p.server_queue_us);
      w.Key("compute_us");
      w.Double(p.server_compute_us);
      w.EndObject();
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take() + "\n";
}

core::Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return core::Status::Internal("cannot write '" + path + "'");
  return core::Status::Ok();
}

}  // namespace slipway::app::bench
