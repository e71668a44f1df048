#include "slipway/repository/model_repository.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace slipway::repository {

namespace fs = std::filesystem;
using core::Result;
using core::Status;

namespace {

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ParseVersionFolder(const std::string& name, int64_t* out) {
  if (name.empty() || name[0] == '0') return false;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), *out);
  return ec == std::errc() && ptr == name.data() + name.size() && *out > 0;
}

}  // namespace

Result<std::unique_ptr<ModelRepository>> ModelRepository::Create(Options options) {
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    return Status::NotFound("model repository '" + options.root + "' is not a directory");
  }
  return std::unique_ptr<ModelRepository>(new ModelRepository(std::move(options)));
}

Result<std::vector<std::string>> ModelRepository::ListModels() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.root, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') names.push_back(name);
  }
  if (ec) return Status::Unavailable("cannot list '" + options_.root + "': " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

Result<ModelSource> ModelRepository::Read(const std::string& name) const {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return Status::InvalidArgument("invalid model name '" + name + "'");
  }
  const fs::path dir = fs::path(options_.root) / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound("model '" + name + "' is not in the repository '" + options_.root +
                            "'");
  }
  ModelSource source;
  source.name = name;
  source.directory = dir.string();
  if (fs::exists(dir / "config.yaml", ec)) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(dir / "config.yaml"));
    ASSIGN_OR_RETURN(source.config, ParseConfigYaml(text, name));
    source.config.source = "config.yaml";
  } else if (fs::exists(dir / "config.pbtxt", ec)) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(dir / "config.pbtxt"));
    ASSIGN_OR_RETURN(source.config, ParseConfigPbtxt(text, name));
    source.config.source = "config.pbtxt";
  } else {
    source.config.name = name;
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    int64_t v = 0;
    if (entry.is_directory() && ParseVersionFolder(entry.path().filename().string(), &v)) {
      source.versions.push_back(v);
    }
  }
  std::sort(source.versions.begin(), source.versions.end());
  return source;
}

std::vector<int64_t> SelectVersions(const core::VersionPolicy& policy,
                                    const std::vector<int64_t>& on_disk) {
  using Kind = core::VersionPolicy::Kind;
  std::vector<int64_t> wanted;
  switch (policy.kind) {
    case Kind::kAll:
      wanted = on_disk;
      break;
    case Kind::kLatest: {
      const auto n = static_cast<size_t>(std::max<int64_t>(policy.latest_count, 0));
      const size_t start = on_disk.size() > n ? on_disk.size() - n : 0;
      wanted.assign(on_disk.begin() + static_cast<std::ptrdiff_t>(start), on_disk.end());
      break;
    }
    case Kind::kSpecific:
      for (int64_t v : on_disk) {
        if (std::find(policy.specific.begin(), policy.specific.end(), v) != policy.specific.end()) {
          wanted.push_back(v);
        }
      }
      break;
  }
  return wanted;
}

}  // namespace slipway::repository
