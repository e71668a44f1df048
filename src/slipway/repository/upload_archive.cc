// Unpacks an uploaded archive (tar, tar.gz, zip; read with libarchive) into a staging folder.
// Only regular files and folders are taken; absolute paths, '..', links and devices are refused,
// and the unpacked size and entry count are bounded so an archive cannot fill the disk.
#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <fstream>

#include "slipway/repository/model_repository.h"

namespace slipway::repository {

namespace fs = std::filesystem;
using core::Result;
using core::Status;

namespace {

constexpr size_t kMaxEntries = 10000;
constexpr uint64_t kMaxUnpackedBytes = uint64_t{4} << 30;
constexpr size_t kMaxConfigBytes = size_t{1} << 20;

// A safe relative path, or "" when the entry must be refused.
std::string CleanPath(std::string path) {
  while (path.rfind("./", 0) == 0) path = path.substr(2);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.empty() || path[0] == '/') return "";
  for (const auto& part : fs::path(path)) {
    const std::string p = part.string();
    if (p == ".." || p == "." || p.empty()) return "";
  }
  return path;
}

}  // namespace

bool LooksLikeArchive(std::string_view bytes) {
  auto starts = [&](std::string_view magic) { return bytes.substr(0, magic.size()) == magic; };
  return starts("\x1f\x8b") || starts("PK\x03\x04") ||
         (bytes.size() > 262 && bytes.substr(257, 5) == "ustar");
}

Result<StagedUpload> ModelRepository::StageArchive(const std::string& name,
                                                   std::string_view bytes) const {
  ASSIGN_OR_RETURN(std::string staged, StageVersion(name, "", ""));
  StagedUpload out;
  out.directory = staged;
  auto fail = [&](Status st) -> Result<StagedUpload> {
    DiscardStaged(staged);
    return st;
  };
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_zip(a);
  if (archive_read_open_memory(a, bytes.data(), bytes.size()) != ARCHIVE_OK) {
    const std::string why = archive_error_string(a) ? archive_error_string(a) : "unknown format";
    archive_read_free(a);
    return fail(Status::InvalidArgument("the upload is not a readable archive: " + why));
  }
  struct archive_entry* entry = nullptr;
  size_t entries = 0;
  uint64_t unpacked = 0;
  Status status;
  int rc = ARCHIVE_OK;
  while ((rc = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
    const std::string raw = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    const std::string path = CleanPath(raw);
    const auto type = archive_entry_filetype(entry);
    if (++entries > kMaxEntries) {
      status = Status::InvalidArgument("the archive has more than " + std::to_string(kMaxEntries) +
                                       " entries");
      break;
    }
    if (type == AE_IFDIR) continue;
    if (type != AE_IFREG || path.empty()) {
      status = Status::InvalidArgument("the archive entry '" + raw +
                                       "' is not a plain file with a relative path inside the "
                                       "archive; links and '..' are refused");
      break;
    }
    const bool is_config = path == "config.yaml" || path == "config.pbtxt";
    // Model files stream to disk block by block; only a config is kept in memory (and small).
    std::string config_text;
    std::ofstream file;
    const fs::path target = fs::path(staged) / path;
    if (!is_config) {
      std::error_code ec;
      fs::create_directories(target.parent_path(), ec);
      file.open(target, std::ios::binary | std::ios::trunc);
      if (ec || !file) {
        status = Status::Internal("cannot write '" + target.string() + "'");
        break;
      }
    }
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = ARCHIVE_OK;
    while ((r = archive_read_data_block(a, &block, &size, &offset)) == ARCHIVE_OK) {
      unpacked += size;
      if (unpacked > kMaxUnpackedBytes || (is_config && config_text.size() + size > kMaxConfigBytes)) {
        break;
      }
      if (is_config) {
        config_text.append(static_cast<const char*>(block), size);
      } else {
        file.write(static_cast<const char*>(block), static_cast<std::streamsize>(size));
      }
    }
    if (unpacked > kMaxUnpackedBytes) {
      status = Status::InvalidArgument("the archive unpacks to more than " +
                                       std::to_string(kMaxUnpackedBytes >> 30) + " GiB");
      break;
    }
    if (is_config && r == ARCHIVE_OK) {
      status = Status::InvalidArgument("the archive's " + path + " is larger than 1 MiB");
      break;
    }
    if (r != ARCHIVE_EOF) {
      status = Status::InvalidArgument("the archive is damaged at '" + raw + "': " +
                                       (archive_error_string(a) ? archive_error_string(a) : ""));
      break;
    }
    if (is_config) {
      out.config_name = path;
      out.config_text = std::move(config_text);
      continue;
    }
    file.close();
    if (!file) {
      status = Status::Internal("cannot write '" + target.string() + "'");
      break;
    }
    out.files.push_back(path);
  }
  if (status.ok() && rc != ARCHIVE_EOF) {
    status = Status::InvalidArgument(std::string("the archive is damaged: ") +
                                     (archive_error_string(a) ? archive_error_string(a) : ""));
  }
  archive_read_free(a);
  if (!status.ok()) return fail(status);
  if (out.files.empty()) return fail(Status::InvalidArgument("the archive holds no model file"));
  return out;
}

Status ModelRepository::WriteConfig(const std::string& name, const std::string& config_name,
                                    const std::string& text) const {
  const fs::path dir = fs::path(options_.root) / name;
  std::error_code mkdir_ec;
  fs::create_directories(dir, mkdir_ec);
  const fs::path tmp = dir / (".tmp-" + config_name);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return Status::Internal("cannot write '" + tmp.string() + "'");
  }
  std::error_code ec;
  fs::rename(tmp, dir / config_name, ec);
  if (ec) return Status::Internal("cannot write '" + (dir / config_name).string() + "'");
  return Status::Ok();
}

}  // namespace slipway::repository
