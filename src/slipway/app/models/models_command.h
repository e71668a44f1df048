// `slipway models`: a command-line client for a running server's admin HTTP API (the model
// repository extension plus Slipway's labels, traffic split, rollout and history routes):
//   slipway models [--url URL] [--json] [--timeout SECONDS] VERB ...
// with VERB one of list, load, unload, label, split, rollout, promote, rollback, status, history
// and upload. RegisterModelsFlags() declares the flags and checks their shape while CLI11 parses
// (a bad argument surfaces as a CLI::ParseError); RunModelsCommand() sends one request and prints
// the reply. The request building and reply formatting are pure functions in admin_request.h
// and admin_reply_format.h, tested without a server.
//
// Thread safety: ModelsFlags is a plain value. RunModelsCommand blocks for one HTTP round trip,
// bounded by --timeout, and prints to stdout (results) and stderr (errors).
// Exit codes: 0 success, 1 the server answered with an error or could not be reached, 2 bad
// arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace slipway::app::models {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

enum class ModelsVerb {
  kNone,  // no verb parsed yet
  kList,
  kLoad,
  kUnload,
  kLabel,
  kSplit,
  kRollout,
  kPromote,
  kRollback,
  kStatus,
  kHistory,
  kUpload,
};

// "list", "load", ...; "" for kNone.
const char* VerbName(ModelsVerb verb);

// The flag values as CLI11 fills them in. Fields a verb does not take keep their defaults.
struct ModelsFlags {
  std::string url = "http://localhost:8000";  // [http|https]://HOST[:PORT][/BASE]
  bool json = false;                          // print the server's raw JSON reply
  double timeout_seconds = 60;                // connect, send and receive timeouts each
  ModelsVerb verb = ModelsVerb::kNone;
  std::string model;
  std::string config_path;         // load --config FILE: sent as parameters.config
  std::string label;               // label MODEL LABEL ...
  int64_t version = 0;             // label/rollout/promote VERSION, upload --version; 0: none
  bool remove = false;             // label --delete, split --clear
  std::vector<std::string> split;  // split VERSION=WEIGHT..., VERSION a number or a label
  std::string shadow;              // split --shadow VERSION:FRACTION; empty: none
  int limit = 0;                   // history --limit; 0: the server's default
  std::string file;                // upload MODEL FILE
};

// Adds the verbs and their flags to `models` (the `models` subcommand). Cross-flag rules (a
// label needs a VERSION or --delete, split needs entries or --clear) are checked in a callback
// that throws CLI::ValidationError, so every argument error reaches the caller as a ParseError.
void RegisterModelsFlags(CLI::App* models, ModelsFlags* flags);

// Sends the request `flags` describe and prints the reply; returns the process exit code.
int RunModelsCommand(const ModelsFlags& flags);

}  // namespace slipway::app::models
