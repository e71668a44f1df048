#include "slipway/app/models/admin_request.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <string>

#include "slipway/core/json_writer.h"

namespace slipway::app::models {
namespace {

using core::JsonWriter;
using core::Result;
using core::Status;

// Parses all of `text` as a number; false on junk, overflow or an empty string.
template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string ModelPath(const ModelsFlags& f) { return "/v2/models/" + PathSegment(f.model); }

std::string RepositoryPath(const ModelsFlags& f) {
  return "/v2/repository/models/" + PathSegment(f.model);
}

AdminRequest Json(std::string method, std::string path, std::string body) {
  return AdminRequest{std::move(method), std::move(path), std::move(body), "application/json"};
}

AdminRequest NoBody(std::string method, std::string path) {
  return AdminRequest{std::move(method), std::move(path), "", ""};
}

// {} or {"version": N}.
std::string VersionBody(int64_t version) {
  JsonWriter w;
  w.StartObject();
  if (version > 0) {
    w.Key("version");
    w.Int(version);
  }
  w.EndObject();
  return w.Take();
}

std::string SplitBody(const ModelsFlags& f) {
  JsonWriter w;
  w.StartObject();
  w.Key("split");
  w.StartObject();
  for (const std::string& text : f.split) {
    const SplitEntry e = ParseSplitEntry(text).value();  // checked by ValidateModelsFlags
    w.Key(e.version);
    w.Int(e.weight);
  }
  w.EndObject();
  if (!f.shadow.empty()) {
    const ShadowTarget s = ParseShadow(f.shadow).value();
    w.Key("shadow");
    w.StartObject();
    w.Key("version");
    w.String(s.version);
    w.Key("fraction");
    w.Double(s.fraction);
    w.EndObject();
  }
  w.EndObject();
  return w.Take();
}

Result<std::string> LoadBody(const ModelsFlags& f, const FileReader& read_file) {
  JsonWriter w;
  w.StartObject();
  if (!f.config_path.empty()) {
    ASSIGN_OR_RETURN(std::string config, read_file(f.config_path));
    w.Key("parameters");
    w.StartObject();
    w.Key("config");
    w.String(config);
    w.EndObject();
  }
  w.EndObject();
  return w.Take();
}

Status Invalid(ModelsVerb verb, const std::string& message) {
  return Status::InvalidArgument(std::string(VerbName(verb)) + ": " + message);
}

Status ValidateSplit(const ModelsFlags& f) {
  if (f.remove) {
    if (!f.split.empty() || !f.shadow.empty()) {
      return Invalid(f.verb, "--clear takes no VERSION=WEIGHT entries and no --shadow");
    }
    return Status::Ok();
  }
  if (f.split.empty()) {
    return Invalid(f.verb, "give VERSION=WEIGHT entries (e.g. 1=90 2=10) or --clear");
  }
  std::set<std::string> seen;
  for (const std::string& text : f.split) {
    auto e = ParseSplitEntry(text);
    if (!e.ok()) return Invalid(f.verb, e.status().message());
    if (!seen.insert(e->version).second) {
      return Invalid(f.verb, "version " + Quoted(e->version) + " appears twice in the split");
    }
  }
  if (!f.shadow.empty()) {
    auto s = ParseShadow(f.shadow);
    if (!s.ok()) return Invalid(f.verb, "--shadow: " + s.status().message());
  }
  return Status::Ok();
}

}  // namespace

std::string ServerUrl::Origin() const { return scheme + "://" + host + ":" + std::to_string(port); }

Result<ServerUrl> ParseServerUrl(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("expected [http://|https://]HOST[:PORT][/PATH], got " +
                                   Quoted(text) + ": " + why);
  };
  ServerUrl url;
  std::string_view rest = text;
  if (const size_t sep = rest.find("://"); sep != std::string_view::npos) {
    url.scheme.clear();
    for (char c : rest.substr(0, sep)) {
      url.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (url.scheme != "http" && url.scheme != "https")
      return bad("the scheme must be http or https");
    rest = rest.substr(sep + 3);
  }
  if (rest.find_first_of("?#@ \t\r\n") != std::string_view::npos) {
    return bad("no query, fragment, user or spaces allowed");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) url.base_path = std::string(rest.substr(slash));
  while (!url.base_path.empty() && url.base_path.back() == '/') url.base_path.pop_back();

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("an unclosed '[' in the host");
    url.host = std::string(authority.substr(0, close + 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("an empty port");
    }
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return bad("write an IPv6 address in brackets");
    }
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("an empty port");
    }
  }
  if (url.host.empty() || url.host == "[]") return bad("no host");
  if (port_text.empty()) {
    url.port = url.scheme == "https" ? 443 : 80;
  } else if (!ParseNumber(port_text, &url.port) || url.port < 1 || url.port > 65535) {
    return bad("the port must be a number in 1..65535");
  }
  return url;
}

Result<SplitEntry> ParseSplitEntry(std::string_view text) {
  const size_t eq = text.rfind('=');
  SplitEntry e;
  if (eq == std::string_view::npos || eq == 0 || !ParseNumber(text.substr(eq + 1), &e.weight) ||
      e.weight < 0) {
    return Status::InvalidArgument(
        "expected VERSION=WEIGHT with a version number or label and a whole weight >= 0, got " +
        Quoted(text));
  }
  e.version = std::string(text.substr(0, eq));
  return e;
}

Result<ShadowTarget> ParseShadow(std::string_view text) {
  const size_t colon = text.rfind(':');
  ShadowTarget s;
  if (colon == std::string_view::npos || colon == 0 ||
      !ParseNumber(text.substr(colon + 1), &s.fraction) || !std::isfinite(s.fraction) ||
      s.fraction <= 0 || s.fraction > 1) {
    return Status::InvalidArgument(
        "expected VERSION:FRACTION with a version number or label and 0 < FRACTION <= 1, got " +
        Quoted(text));
  }
  s.version = std::string(text.substr(0, colon));
  return s;
}

std::string PathSegment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status ValidateModelsFlags(const ModelsFlags& f) {
  if (f.verb == ModelsVerb::kNone) return Status::InvalidArgument("no verb given");
  if (f.verb != ModelsVerb::kList && f.model.empty()) {
    return Invalid(f.verb, "MODEL must not be empty");
  }
  if (f.version < 0) return Invalid(f.verb, "VERSION must be a number >= 1");
  switch (f.verb) {
    case ModelsVerb::kLabel:
      if (f.label.empty()) return Invalid(f.verb, "LABEL must not be empty");
      if ((f.version > 0) == f.remove) {
        return Invalid(f.verb, "give either a VERSION for label " + Quoted(f.label) +
                                   " or --delete, not both or neither");
      }
      return Status::Ok();
    case ModelsVerb::kSplit:
      return ValidateSplit(f);
    case ModelsVerb::kRollout:
      if (f.version <= 0) return Invalid(f.verb, "VERSION must be a number >= 1");
      return Status::Ok();
    case ModelsVerb::kHistory:
      if (f.limit < 0) return Invalid(f.verb, "--limit must be >= 1");
      return Status::Ok();
    case ModelsVerb::kUpload:
      if (f.file.empty()) return Invalid(f.verb, "FILE must not be empty");
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

Result<AdminRequest> BuildAdminRequest(const ModelsFlags& f, const FileReader& read_file) {
  RETURN_IF_ERROR(ValidateModelsFlags(f));
  switch (f.verb) {
    case ModelsVerb::kList:
      return NoBody("POST", "/v2/repository/index");
    case ModelsVerb::kLoad: {
      ASSIGN_OR_RETURN(std::string body, LoadBody(f, read_file));
      return Json("POST", RepositoryPath(f) + "/load", std::move(body));
    }
    case ModelsVerb::kUnload:
      return Json("POST", RepositoryPath(f) + "/unload", "{}");
    case ModelsVerb::kLabel: {
      std::string path = ModelPath(f) + "/labels/" + PathSegment(f.label);
      if (f.remove) return NoBody("DELETE", std::move(path));
      return Json("PUT", std::move(path), VersionBody(f.version));
    }
    case ModelsVerb::kSplit:
      if (f.remove) return NoBody("DELETE", ModelPath(f) + "/traffic");
      return Json("PUT", ModelPath(f) + "/traffic", SplitBody(f));
    case ModelsVerb::kRollout:
      return Json("POST", ModelPath(f) + "/rollout", VersionBody(f.version));
    case ModelsVerb::kPromote:
      return Json("POST", ModelPath(f) + "/promote", VersionBody(f.version));
    case ModelsVerb::kRollback:
      return Json("POST", ModelPath(f) + "/rollback", "{}");
    case ModelsVerb::kStatus:
      return NoBody("GET", ModelPath(f) + "/routing");
    case ModelsVerb::kHistory: {
      std::string path = ModelPath(f) + "/history";
      if (f.limit > 0) path += "?limit=" + std::to_string(f.limit);
      return NoBody("GET", std::move(path));
    }
    case ModelsVerb::kUpload: {
      ASSIGN_OR_RETURN(std::string bytes, read_file(f.file));
      std::string path = RepositoryPath(f) + "/versions";
      std::string method = "POST";
      if (f.version > 0) {
        path += "/" + std::to_string(f.version);
        method = "PUT";
      }
      return AdminRequest{std::move(method), std::move(path), std::move(bytes),
                          "application/octet-stream"};
    }
    case ModelsVerb::kNone:
      break;
  }
  return Status::InvalidArgument("no verb given");
}

}  // namespace slipway::app::models
