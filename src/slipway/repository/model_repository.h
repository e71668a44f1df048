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
#include <string_view>
#include <vector>

#include "slipway/core/model_config.h"
#include "slipway/core/status.h"

namespace slipway::repository {

struct ModelSource {
  std::string name;
  std::string directory;
  core::ModelConfig config;             // as parsed, not yet completed from the model file
  std::vector<int64_t> versions;        // version folders on disk, ascending
  std::string config_text;              // the config file's text ("" without one)
};

// What a version's files look like now (names, sizes, modification times), so a reload can tell
// an unchanged version from a replaced one. Empty when the folder cannot be read.
std::string VersionFingerprint(const ModelSource& source, int64_t version);

struct StagedUpload {
  std::string directory;    // the staged folder
  std::vector<std::string> files;  // relative paths written into it
  std::string config_name;  // "config.yaml" or "config.pbtxt" when the archive holds one
  std::string config_text;
};

// Whether uploaded bytes are an archive (gzip, zip or tar magic) rather than a model file.
bool LooksLikeArchive(std::string_view bytes);

class ModelRepository {
 public:
  struct Options {
    std::string root;  // the repository folder; must exist
  };
  static core::Result<std::unique_ptr<ModelRepository>> Create(Options options);

  const std::string& root() const { return options_.root; }
  // Writing a new version (the only writes the repository makes). The bytes are staged in a
  // hidden folder inside the model's folder (created if missing), flushed to disk, and only then
  // renamed to the version's folder, so a crash never leaves a half-written version; staged
  // folders left by a crash are removed by RemoveStaleStaging.
  core::Result<std::string> StageVersion(const std::string& name, const std::string& filename,
                                         std::string_view bytes) const;
  // Unpacks an archive (tar, tar.gz, zip) into a staged folder; a top-level config.yaml or
  // config.pbtxt is returned apart instead of being written.
  core::Result<StagedUpload> StageArchive(const std::string& name, std::string_view bytes) const;
  // Writes a model's config file (via a temporary file and a rename).
  core::Status WriteConfig(const std::string& name, const std::string& config_name,
                           const std::string& text) const;
  // Renames a staged folder to ROOT/<name>/<version>; AlreadyExists when that version exists.
  core::Status CommitVersion(const std::string& name, const std::string& staged,
                             int64_t version) const;
  void DiscardStaged(const std::string& staged) const;
  void RemoveStaleStaging() const;
  // Names of the model folders, sorted.
  core::Result<std::vector<std::string>> ListModels() const;
  // Reads one model's folder and config. Fails (naming the file and the problem) when the config
  // cannot be parsed or the model is unknown.
  core::Result<ModelSource> Read(const std::string& name) const;
  // Same, with `config_override` (Triton's protobuf JSON) replacing the config file when not empty.
  core::Result<ModelSource> Read(const std::string& name, const std::string& config_override) const;

 private:
  explicit ModelRepository(Options options) : options_(std::move(options)) {}
  Options options_;
};

// Whether `name` may name a model folder: letters, digits, '_', '-', '.', not starting with '.'.
bool IsValidModelName(std::string_view name);

// The versions a policy wants, given the versions on disk (ascending). Pure.
std::vector<int64_t> SelectVersions(const core::VersionPolicy& policy,
                                    const std::vector<int64_t>& on_disk);

// Parsers for the two config formats; `model_name` is the folder's name.
core::Result<core::ModelConfig> ParseConfigYaml(const std::string& text,
                                                const std::string& model_name);
core::Result<core::ModelConfig> ParseConfigPbtxt(const std::string& text,
                                                 const std::string& model_name);
// A Triton ModelConfig in protobuf JSON (the repository extension's "config" load parameter).
core::Result<core::ModelConfig> ParseConfigJson(const std::string& text,
                                                const std::string& model_name);

}  // namespace slipway::repository
