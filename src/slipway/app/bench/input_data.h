// Input tensors for `slipway bench`: the model's inputs as its metadata describes them, the
// shapes they get from --batch-size and --shape, and their values (random with a fixed seed,
// zeros, or a JSON file), encoded once both as raw little-endian bytes (HTTP binary extension
// and gRPC raw_input_contents; BYTES elements as uint32 length + bytes) and as a flat JSON array
// (KServe v2 JSON). Requests are built from these once, so the load loop does no encoding.
//
// Thread safety: plain values and pure functions. Nothing here blocks except ReadFileText.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "slipway/core/data_type.h"
#include "slipway/core/status.h"

namespace slipway::app::bench {

// One input as the model metadata lists it; -1 marks a variable dimension.
struct InputSpec {
  std::string name;
  std::string datatype;  // wire name, e.g. "FP32"
  std::vector<int64_t> shape;
};

// One input ready to send.
struct InputTensor {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;  // no -1 left
  std::string raw;             // little-endian row-major; BYTES: uint32 LE length + bytes each
  std::string json;            // flat JSON array of the same values, e.g. "[1,2.5,3]"
};

// The concrete shape of `spec`: a leading -1 becomes `batch_size`; `shapes` (from --shape, by
// input name) gives the other -1 dimensions, either as the full shape or without the leading
// batch dimension. A remaining -1 without --shape is an InvalidArgument naming the input.
core::Result<std::vector<int64_t>> ResolveShape(
    const InputSpec& spec, int batch_size,
    const std::map<std::string, std::vector<int64_t>>& shapes);

// Random (`random`, seeded) or all-zero (`zero`) values for every input. Numbers: floats in
// [0, 1), integers in [0, 9], BOOL false/true; BYTES: short random alphanumeric strings ("" for
// zero). Fails for unsupported datatypes and unresolvable shapes.
core::Result<std::vector<InputTensor>> MakeGeneratedInputs(
    const std::vector<InputSpec>& specs, const std::string& mode, int batch_size,
    const std::map<std::string, std::vector<int64_t>>& shapes, uint64_t seed);

// Values from a JSON document {"inputs": {NAME: {"data": [flat list], "shape": [...]}}}; every
// model input must be present. "shape" is optional (default: the resolved shape) and must have
// the input's rank and agree with its fixed dimensions; the data count must match the shape.
core::Result<std::vector<InputTensor>> InputsFromJson(
    const std::vector<InputSpec>& specs, const std::string& json_text, int batch_size,
    const std::map<std::string, std::vector<int64_t>>& shapes);

// bfloat16 as tritonclient encodes it: the high 16 bits of the float32, truncated. (IEEE half
// is core::FloatToHalfBits.)
uint16_t FloatToBf16(float value);

// The whole file at `path`, or NotFound.
core::Result<std::string> ReadFileText(const std::string& path);

}  // namespace slipway::app::bench
