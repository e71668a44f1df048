#include "slipway/repository/model_repository.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
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

Result<ModelSource> ModelRepository::Read(const std::string& name) const { return Read(name, ""); }

Result<ModelSource> ModelRepository::Read(const std::string& name,
                                          const std::string& config_override) const {
  if (!IsValidModelName(name)) return Status::InvalidArgument("invalid model name '" + name + "'");
  const fs::path dir = fs::path(options_.root) / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound("model '" + name + "' is not in the repository '" + options_.root +
                            "'");
  }
  ModelSource source;
  source.name = name;
  source.directory = dir.string();
  if (!config_override.empty()) {
    ASSIGN_OR_RETURN(source.config, ParseConfigJson(config_override, name));
    source.config.source = "config override";
    source.config_text = "override:" + config_override;
  } else if (fs::exists(dir / "config.yaml", ec)) {
    ASSIGN_OR_RETURN(source.config_text, ReadFile(dir / "config.yaml"));
    ASSIGN_OR_RETURN(source.config, ParseConfigYaml(source.config_text, name));
    source.config.source = "config.yaml";
  } else if (fs::exists(dir / "config.pbtxt", ec)) {
    ASSIGN_OR_RETURN(source.config_text, ReadFile(dir / "config.pbtxt"));
    ASSIGN_OR_RETURN(source.config, ParseConfigPbtxt(source.config_text, name));
    source.config.source = "config.pbtxt";
  } else {
    source.config.name = name;
  }
  source.config.directory = dir.string();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    int64_t v = 0;
    if (entry.is_directory() && ParseVersionFolder(entry.path().filename().string(), &v)) {
      source.versions.push_back(v);
    }
  }
  std::sort(source.versions.begin(), source.versions.end());
  return source;
}

bool IsValidModelName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name[0] == '.') return false;
  for (char ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.') {
      return false;
    }
  }
  return true;
}

namespace {

Status SyncPath(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return Status::Internal("cannot open '" + path.string() + "' to flush it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::Internal("cannot flush '" + path.string() + "'");
  return Status::Ok();
}

}  // namespace

Result<std::string> ModelRepository::StageVersion(const std::string& name,
                                                  const std::string& filename,
                                                  std::string_view bytes) const {
  if (!IsValidModelName(name)) return Status::InvalidArgument("invalid model name '" + name + "'");
  if (!filename.empty() && !IsValidModelName(filename)) {
    return Status::InvalidArgument("invalid model file name '" + filename + "'");
  }
  // Staged in the repository's root (a hidden folder no scan reads, on the same file system, so
  // the final rename is atomic); the model's folder appears only when a version lands in it.
  std::error_code ec;
  std::string pattern = (fs::path(options_.root) / (".staging-" + name + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Status::Internal("cannot create a staging folder in '" + options_.root + "'");
  }
  const fs::path staged(pattern);
  fs::permissions(staged, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec, ec);
  if (filename.empty()) return staged.string();  // an archive is unpacked into it
  {
    std::ofstream out(staged / filename, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      DiscardStaged(staged.string());
      return Status::Internal("cannot write '" + (staged / filename).string() + "'");
    }
  }
  if (auto st = SyncPath(staged / filename, false); !st.ok()) {
    DiscardStaged(staged.string());
    return st;
  }
  return staged.string();
}

Status ModelRepository::CommitVersion(const std::string& name, const std::string& staged,
                                      int64_t version) const {
  const fs::path model_dir = fs::path(options_.root) / name;
  const fs::path target = model_dir / std::to_string(version);
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec) return Status::Internal("cannot create '" + model_dir.string() + "': " + ec.message());
  if (fs::exists(target, ec)) {
    return Status::AlreadyExists("model '" + name + "' already has a version " +
                                 std::to_string(version));
  }
  // rename(2) of a folder is atomic and refuses to replace a non-empty folder.
  if (::rename(staged.c_str(), target.c_str()) != 0) {
    return Status::AlreadyExists("cannot move the upload into '" + target.string() + "'");
  }
  return SyncPath(model_dir, true);
}

void ModelRepository::DiscardStaged(const std::string& staged) const {
  std::error_code ec;
  fs::remove_all(staged, ec);
}

void ModelRepository::RemoveStaleStaging() const {
  std::error_code ec;
  for (const auto& model : fs::directory_iterator(options_.root, ec)) {
    if (!model.is_directory()) continue;
    if (model.path().filename().string().rfind(".staging-", 0) == 0) {
      DiscardStaged(model.path().string());
      continue;
    }
    std::error_code inner;
    for (const auto& entry : fs::directory_iterator(model.path(), inner)) {
      if (entry.path().filename().string().rfind(".staging-", 0) == 0) {
        DiscardStaged(entry.path().string());
      }
    }
  }
}

std::string VersionFingerprint(const ModelSource& source, int64_t version) {
  const fs::path dir = fs::path(source.directory) / std::to_string(version);
  std::vector<std::string> parts;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const auto size = it->file_size(ec);
    const auto mtime = it->last_write_time(ec).time_since_epoch().count();
    parts.push_back(fs::relative(it->path(), dir, ec).string() + ":" + std::to_string(size) + ":" +
                    std::to_string(mtime));
  }
  if (ec) return "";
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& p : parts) out += p + ";";
  return out;
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
