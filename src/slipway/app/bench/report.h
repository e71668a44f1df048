// The output of `slipway bench`: a table on stdout (one row per point), and the same numbers,
// with errors by kind and each window's throughput, as CSV and JSON files.
//
// Thread safety: pure formatting functions over plain values; the Write* functions block on
// file I/O only.
#pragma once

#include <string>
#include <vector>

#include "slipway/app/bench/input_data.h"
#include "slipway/app/bench/measurement.h"
#include "slipway/core/status.h"

namespace slipway::app::bench {

// What was measured, for the report's header.
struct BenchRun {
  std::string model;
  std::string model_version;
  std::string protocol;
  bool open_loop = false;
  int batch_size = 1;
  bool server_statistics = false;   // the server advertises the statistics extension
  std::vector<InputTensor> inputs;  // only names, datatypes and shapes are reported
  std::vector<PointResult> points;
};

std::string FormatTable(const BenchRun& run);
std::string FormatCsv(const BenchRun& run);
std::string FormatJson(const BenchRun& run);

// Writes `text` to `path`, replacing it; Internal naming the path on failure.
core::Status WriteTextFile(const std::string& path, const std::string& text);

}  // namespace slipway::app::bench
