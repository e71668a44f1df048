// Parses the `predict:` section of config.yaml (core::PredictConfig). Unknown keys and values of
// the wrong type are refused with a message naming the key; file paths must stay inside the
// model's folder. Checks against the model's tensors come later (core::ValidatePredictConfig).
// Thread safety: a pure function. Never blocks.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "slipway/core/predict_config.h"
#include "slipway/core/status.h"

namespace slipway::repository {

// `where` prefixes messages, e.g. "model 'm' config.yaml predict".
core::Status ParsePredictConfig(const YAML::Node& node, const std::string& where,
                                core::PredictConfig* out);

}  // namespace slipway::repository
