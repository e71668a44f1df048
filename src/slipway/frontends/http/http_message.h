// HttpRequest / HttpResponse: the transport-neutral HTTP messages the route handlers see.
//
// The server fills an HttpRequest after reading and decompressing a request, and writes the
// HttpResponse back (compressing it when the client accepts that). Header names are compared
// case-insensitively. Plain values; no thread safety of their own.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slipway::frontends::http {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::string query;   // after '?', undecoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;    // decompressed
  std::string peer;    // the client's address, for rate limits and logs
  // Set by the server once the client has closed the connection while its answer was pending.
  std::shared_ptr<const std::atomic<bool>> client_gone;

  bool has_header(std::string_view name) const;
  // The first value of a header, or "" when absent.
  std::string header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace slipway::frontends::http
