#include "slipway/frontends/http/http_compression.h"

#include <zlib.h>

#include <cctype>

#include "slipway/frontends/http/http_message.h"

namespace slipway::frontends::http {

using core::Status;

core::Result<ContentCoding> ParseContentEncoding(std::string_view value) {
  if (value.empty() || EqualsIgnoreCase(value, "identity")) return ContentCoding::kIdentity;
  if (EqualsIgnoreCase(value, "gzip") || EqualsIgnoreCase(value, "x-gzip")) {
    return ContentCoding::kGzip;
  }
  if (EqualsIgnoreCase(value, "deflate")) return ContentCoding::kDeflate;
  return Status::Unimplemented("unsupported Content-Encoding '" + std::string(value) +
                               "'; use gzip, deflate or identity");
}

ContentCoding ChooseResponseCoding(std::string_view accept) {
  bool gzip = false;
  bool deflate = false;
  size_t pos = 0;
  while (pos <= accept.size()) {
    size_t end = accept.find(',', pos);
    if (end == std::string_view::npos) end = accept.size();
    std::string_view item = accept.substr(pos, end - pos);
    pos = end + 1;
    const size_t semi = item.find(';');
    std::string_view token = item.substr(0, semi);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) {
      token.remove_prefix(1);
    }
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
      token.remove_suffix(1);
    }
    bool refused = false;
    if (semi != std::string_view::npos) {
      std::string_view params = item.substr(semi + 1);
      const size_t q = params.find("q=");
      if (q != std::string_view::npos) {
        std::string_view qv = params.substr(q + 2);
        refused = !qv.empty() && qv[0] == '0' &&
                  qv.find_first_not_of("0.", 0) == std::string_view::npos;
      }
    }
    if (refused) continue;
    if (EqualsIgnoreCase(token, "gzip") || token == "*") gzip = true;
    if (EqualsIgnoreCase(token, "deflate")) deflate = true;
  }
  if (gzip) return ContentCoding::kGzip;
  if (deflate) return ContentCoding::kDeflate;
  return ContentCoding::kIdentity;
}

std::string_view ContentCodingName(ContentCoding coding) {
  switch (coding) {
    case ContentCoding::kGzip: return "gzip";
    case ContentCoding::kDeflate: return "deflate";
    case ContentCoding::kIdentity: break;
  }
  return "identity";
}

namespace {

// window_bits: 15+32 auto-detects zlib and gzip; -15 is a raw deflate stream.
core::Result<std::string> Inflate(std::string_view body, int window_bits, size_t limit,
                                  std::string_view name) {
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) return Status::Internal("inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  zs.avail_in = static_cast<uInt>(body.size());
  std::string out;
  char buf[65536];
  int ret = Z_OK;
  while (ret != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    ret = inflate(&zs, Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END) {
      inflateEnd(&zs);
      return Status::InvalidArgument("corrupt " + std::string(name) + " request body: " +
                                     (zs.msg ? zs.msg : "truncated stream"));
    }
    const size_t produced = sizeof(buf) - zs.avail_out;
    if (out.size() + produced > limit) {
      inflateEnd(&zs);
      return Status::ResourceExhausted("request body is larger than the limit of " +
                                       std::to_string(limit) + " bytes after decompression");
    }
    out.append(buf, produced);
    if (ret == Z_OK && produced == 0 && zs.avail_in == 0) {
      inflateEnd(&zs);
      return Status::InvalidArgument("corrupt " + std::string(name) +
                                     " request body: truncated stream");
    }
  }
  inflateEnd(&zs);
  return out;
}

}  // namespace

core::Result<std::string> Decompress(std::string_view body, ContentCoding coding, size_t limit) {
  if (coding == ContentCoding::kGzip) return Inflate(body, 15 + 32, limit, "gzip");
  auto zlib = Inflate(body, 15 + 32, limit, "deflate");
  if (zlib.ok() || zlib.status().code() != core::StatusCode::kInvalidArgument) return zlib;
  auto raw = Inflate(body, -15, limit, "deflate");
  return raw.ok() ? raw : zlib;
}

std::string Compress(std::string_view body, ContentCoding coding) {
  z_stream zs{};
  const int window_bits = coding == ContentCoding::kGzip ? 15 + 16 : 15;
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return std::string(body);
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(body.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  zs.avail_in = static_cast<uInt>(body.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace slipway::frontends::http
