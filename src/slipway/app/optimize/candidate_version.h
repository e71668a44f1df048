// Writing an optimized model as the next version of a model in a repository, where the
// lifecycle machinery takes it from: a server in poll mode finds it at its next scan (an
// explicit-mode server at the next load of the model), validates and warms it up, and — when
// the model's config has a rollout plan — starts a canary whose guards decide whether it ships.
//
// The files are staged in a hidden folder and renamed to the version number in one step, so a
// scanning server never sees a half-written version.
// Thread safety: free functions; blocks on the file system.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "slipway/core/model_config.h"
#include "slipway/core/status.h"

namespace slipway::app::optimize {

struct CandidateTarget {
  std::string repository;  // the repository's root
  std::string model;       // the model's folder name
  core::ModelConfig config;  // the model's config as the repository reads it
  std::string model_filename;  // default_model_filename, or model.onnx
  int64_t next_version = 1;
};

// Splits "REPO/MODEL" and reads the model's folder; NotFound when the model is not there.
core::Result<CandidateTarget> ResolveCandidate(const std::string& repo_model);

// Writes `model_bytes` (as target.model_filename) and `files` (name, content) as a new version:
// the next free number at the time of writing. Returns the version written.
core::Result<int64_t> WriteCandidate(const CandidateTarget& target, const std::string& model_bytes,
                                     const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace slipway::app::optimize
