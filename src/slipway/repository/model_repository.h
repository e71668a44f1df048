// ModelRepository: reads a model repository on disk.
//
// Layout: ROOT/<model>/<version>/<model file>, versions positive integers, with an optional
// ROOT/<model>/config.yaml (Slipway's format) or ROOT/<model>/config.pbtxt (Triton's format).
// The repository only reads: it says which models exist, what their configs say and which
// versions the version policy wants now; the lifecycle layer loads them.
// Thread safety: stateless apart from the root path; every call reads the disk afresh and blocks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "slipway/core/model_config.h"
#include "slipway/core/status.h"

namespace slipway::repository {

struct ModelSource {
  std::string name;
  std::string directory;
  core::ModelConfig config;             // as parsed, not yet completed from the model file
  std::vector<int64_t> versions;        // version folders on disk, ascending
};

class ModelRepository {
 public:
  struct Options {
    std::string root;  // the repository folder; must exist
  };
  static core::Result<std::unique_ptr<ModelRepository>> Create(Options options);

  const std::string& root() const { return options_.root; }
  // Names of the model folders, sorted.
  core::Result<std::vector<std::string>> ListModels() const;
  // Reads one model's folder and config. Fails (naming the file and the problem) when the config
  // cannot be parsed or the model is unknown.
  core::Result<ModelSource> Read(const std::string& name) const;

 private:
  explicit ModelRepository(Options options) : options_(std::move(options)) {}
  Options options_;
};

// The versions a policy wants, given the versions on disk (ascending). Pure.
std::vector<int64_t> SelectVersions(const core::VersionPolicy& policy,
                                    const std::vector<int64_t>& on_disk);

// Parsers for the two config formats; `model_name` is the folder's name.
core::Result<core::ModelConfig> ParseConfigYaml(const std::string& text,
                                                const std::string& model_name);
core::Result<core::ModelConfig> ParseConfigPbtxt(const std::string& text,
                                                 const std::string& model_name);

}  // namespace slipway::repository
