// gzip / deflate for HTTP bodies (zlib): request bodies are inflated with a size limit, response
// bodies are compressed in the client's preferred accepted encoding.
// Thread safety: free functions; safe from any thread. CPU-bound, never blocks on I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "slipway/core/status.h"

namespace slipway::frontends::http {

enum class ContentCoding { kIdentity, kGzip, kDeflate };

// Parses a Content-Encoding value; Unimplemented (415) for anything but identity, gzip, deflate.
core::Result<ContentCoding> ParseContentEncoding(std::string_view value);
// Picks gzip, else deflate, else identity from an Accept-Encoding value (q=0 means refused).
ContentCoding ChooseResponseCoding(std::string_view accept_encoding);
std::string_view ContentCodingName(ContentCoding coding);

// Inflates `body`. ResourceExhausted when the result would exceed `limit` bytes;
// InvalidArgument when the data is corrupt. "deflate" accepts zlib-wrapped and raw streams.
core::Result<std::string> Decompress(std::string_view body, ContentCoding coding, size_t limit);
std::string Compress(std::string_view body, ContentCoding coding);

}  // namespace slipway::frontends::http
