// AdminRequest: the one HTTP request a `slipway models` invocation sends (method, path, body,
// content type), built from the parsed flags by a pure function, and the parsers for the flag
// values that need more than CLI11's checks (the server URL, split entries, the shadow target).
//
// Thread safety: plain values and pure functions. Nothing here blocks except the FileReader the
// caller passes to BuildAdminRequest (load --config and upload read a file through it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "slipway/app/models/models_command.h"
#include "slipway/core/status.h"

namespace slipway::app::models {

// Where the admin API lives: "[http|https]://HOST[:PORT][/BASE]" ("HOST:PORT" means http).
struct ServerUrl {
  std::string scheme = "http";
  std::string host;  // as written; an IPv6 literal keeps its brackets
  int port = 0;
  std::string base_path;  // "" or "/prefix" without a trailing slash; prepended to every path
  // "http://HOST:PORT", the form messages name.
  std::string Origin() const;
};

core::Result<ServerUrl> ParseServerUrl(std::string_view text);

// One `split` entry, "VERSION=WEIGHT": a version number or label and a non-negative weight.
struct SplitEntry {
  std::string version;
  int64_t weight = 0;
};

core::Result<SplitEntry> ParseSplitEntry(std::string_view text);

// `split --shadow VERSION:FRACTION`: mirror this fraction (0 < f <= 1) of requests to VERSION.
struct ShadowTarget {
  std::string version;
  double fraction = 0;
};

core::Result<ShadowTarget> ParseShadow(std::string_view text);

// Percent-encodes one URL path segment (model names, labels): everything but RFC 3986's
// unreserved characters.
std::string PathSegment(std::string_view segment);

// The rules CLI11 cannot express: a label needs a VERSION or --delete (not both); split needs
// VERSION=WEIGHT entries or --clear (not both), each version at most once, well-formed entries
// and shadow target. InvalidArgument naming the verb and the flag otherwise.
core::Status ValidateModelsFlags(const ModelsFlags& flags);

struct AdminRequest {
  std::string method;  // GET, POST, PUT or DELETE
  std::string path;    // from the server root, escaped, with any query string; no base path
  std::string body;
  std::string content_type;  // empty when the body is empty and not meant as JSON
};

// Reads a whole file; used for load --config and upload.
using FileReader = std::function<core::Result<std::string>(const std::string& path)>;

// The request for `flags`. Runs ValidateModelsFlags first; a failing `read_file` is passed on.
core::Result<AdminRequest> BuildAdminRequest(const ModelsFlags& flags, const FileReader& read_file);

}  // namespace slipway::app::models
