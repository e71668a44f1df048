#include "slipway/core/infer_request.h"

#include <charconv>

namespace slipway::core {

Result<int64_t> ParseModelVersion(std::string_view text) {
  if (text.empty()) return int64_t{0};
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v <= 0) {
    return Status::InvalidArgument("model version must be a positive integer, got '" +
                                   std::string(text) + "'");
  }
  return v;
}

}  // namespace slipway::core
