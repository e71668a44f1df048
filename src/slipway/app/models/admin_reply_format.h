// The human-readable output of `slipway models`: the server's JSON replies turned into aligned
// tables (list, history), a routing summary (status) or a one-line confirmation (the verbs that
// change something), and the one-line message for an error reply. Pure functions of the reply
// text, tested without a server.
//
// Thread safety: pure functions. Nothing here blocks.
#pragma once

#include <string>
#include <vector>

#include "slipway/app/models/models_command.h"
#include "slipway/core/status.h"

namespace slipway::app::models {

// Columns padded to their widest cell and separated by two spaces; the first row is the header.
// Empty cells print as "-" and control characters as spaces, so every row stays one line.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// POST /v2/repository/index: [{"name","version","state","reason"}] as NAME VERSION STATE REASON.
core::Result<std::string> FormatModelIndex(const std::string& body);

// GET /v2/models/<m>/routing: model, default version, labels, traffic split (with each
// version's share), shadow and rollout state, one "Key: value" line each.
core::Result<std::string> FormatRouting(const std::string& body);

// GET /v2/models/<m>/history: {"model","events":[...]} as TIME KIND VERSION REASON.
core::Result<std::string> FormatHistory(const std::string& body);

// The output of a successful reply to `flags`: the three formatters above for list, status and
// history (an error when the reply is not the expected JSON); for the verbs that change state, a
// confirmation built from the flags, followed by the routing summary when the reply carries one.
core::Result<std::string> FormatReply(const ModelsFlags& flags, const std::string& body);

// "error: <message> (HTTP <status>)" from an {"error": "..."} reply; a reply of another shape
// contributes its first line instead.
std::string FormatHttpError(int status, const std::string& body);

}  // namespace slipway::app::models
