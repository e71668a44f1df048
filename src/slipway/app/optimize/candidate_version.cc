#include "slipway/app/optimize/candidate_version.h"

#include <algorithm>
#include <filesystem>

#include "slipway/app/optimize/onnx_model_file.h"
#include "slipway/repository/model_repository.h"

namespace slipway::app::optimize {

namespace fs = std::filesystem;
using core::Result;
using core::Status;

Result<CandidateTarget> ResolveCandidate(const std::string& repo_model) {
  std::string trimmed = repo_model;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const fs::path p(trimmed);
  CandidateTarget t;
  t.model = p.filename().string();
  t.repository = p.parent_path().string();
  if (t.repository.empty()) t.repository = ".";
  if (!repository::IsValidModelName(t.model)) {
    return Status::InvalidArgument("--as-candidate takes REPOSITORY/MODEL; '" + t.model +
                                   "' is not a model name");
  }
  ASSIGN_OR_RETURN(auto repo, repository::ModelRepository::Create({t.repository}));
  auto source = repo->Read(t.model);
  if (!source.ok()) {
    return Status::NotFound("--as-candidate " + repo_model + ": " + source.status().message());
  }
  t.config = source->config;
  t.model_filename = t.config.default_model_filename.empty() ? "model.onnx" : t.config.default_model_filename;
  t.next_version = source->versions.empty() ? 1 : source->versions.back() + 1;
  return t;
}

Result<int64_t> WriteCandidate(const CandidateTarget& target, const std::string& model_bytes,
                               const std::vector<std::pair<std::string, std::string>>& files) {
  ASSIGN_OR_RETURN(auto repo, repository::ModelRepository::Create({target.repository}));
  ASSIGN_OR_RETURN(std::string staged, repo->StageVersion(target.model, target.model_filename, model_bytes));
  for (const auto& [name, content] : files) {
    Status st = WriteFileSynced((fs::path(staged) / name).string(), content);
    if (!st.ok()) {
      repo->DiscardStaged(staged);
      return st;
    }
  }
  // Another writer may take a number meanwhile: try the next few.
  int64_t version = target.next_version;
  for (int attempt = 0; attempt < 16; ++attempt, ++version) {
    auto source = repo->Read(target.model);
    if (source.ok() && !source->versions.empty()) version = std::max(version, source->versions.back() + 1);
    Status st = repo->CommitVersion(target.model, staged, version);
    if (st.ok()) return version;
    if (st.code() != core::StatusCode::kAlreadyExists) {
      repo->DiscardStaged(staged);
      return st;
    }
  }
  repo->DiscardStaged(staged);
  return Status::AlreadyExists("could not find a free version number for model '" + target.model + "'");
}

}  // namespace slipway::app::optimize
