// DeploymentStore: a durable record of what happened to each model's deployment (loads, unloads,
// label and traffic changes, rollout steps, promotions, rollbacks, with why and the metrics that
// drove it), plus one JSON state blob per model that a restarted server reads back (for example a
// rollout in progress).
//
// Storage: one SQLite database, a file (WAL journal, synchronous=NORMAL, a busy timeout) or
// ":memory:" (gone when the store is destroyed). The schema is created when missing and versioned
// with PRAGMA user_version (now 1); a database with a newer version is refused. Events are
// append-only; ids increase and are never reused. Each model keeps its newest
// `max_events_per_model` events: recording one more deletes that model's oldest.
// Thread safety: every method may be called from any thread; one mutex serializes the connection.
// Blocking: every call blocks on the disk (and, up to the busy timeout, on another connection's
// lock), so keep it off the request path.
// Ownership: the store owns its connection; destroying it closes the database.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "slipway/core/status.h"

struct sqlite3;

namespace slipway::routing {

struct DeploymentEvent {
  int64_t id = 0;       // assigned by Record; ignored on input
  int64_t time_ms = 0;  // unix epoch milliseconds; Record fills it with the current time when 0
  std::string model;    // required
  std::string kind;     // required: "load", "load_failed", "unload", "label", "traffic",
                        // "rollout_start", "rollout_step", "promote", "rollback", "upload", ...
  int64_t version = 0;  // 0 when not about one version
  std::string reason;   // human-readable why
  std::string details_json;  // a JSON object as text (metrics behind the decision); "" means "{}"
};

class DeploymentStore {
 public:
  struct Options {
    std::string path;            // required: a file path, or ":memory:"; a missing parent folder
                                 // is created
    int busy_timeout_ms = 5000;  // how long a call waits for another connection's lock
    size_t max_events_per_model = 10000;  // older events of a model are deleted; 0: keep all
  };
  // Opens (creating when missing) the database and its schema. Fails, naming the path and SQLite's
  // message, when the folder cannot be created, the file cannot be opened or is not a SQLite
  // database, or its schema version is newer than this code knows.
  static core::Result<std::unique_ptr<DeploymentStore>> Create(Options options);
  ~DeploymentStore();
  DeploymentStore(const DeploymentStore&) = delete;
  DeploymentStore& operator=(const DeploymentStore&) = delete;

  // Appends one event and returns it as stored (id assigned, time filled, details "{}" when
  // empty). InvalidArgument when model or kind is empty or details_json is not a JSON object.
  core::Result<DeploymentEvent> Record(DeploymentEvent event);
  // At most `limit` events, newest (highest id) first; model "" means all models.
  core::Result<std::vector<DeploymentEvent>> History(const std::string& model, size_t limit) const;

  // Stores (inserting or replacing) a model's state; `state_json` must be a JSON object.
  core::Status SaveState(const std::string& model, const std::string& state_json);
  // Forgets a model's state; OK when there was none.
  core::Status DeleteState(const std::string& model);
  // Every stored state: model -> state_json.
  core::Result<std::map<std::string, std::string>> LoadStates() const;

  const std::string& path() const { return path_; }

 private:
  DeploymentStore(std::string path, size_t max_events_per_model)
      : path_(std::move(path)), max_events_per_model_(max_events_per_model) {}
  core::Status Open(int busy_timeout_ms);
  core::Status CreateSchema();
  core::Status CheckJsonObject(const std::string& what, const std::string& json) const;

  const std::string path_;
  const size_t max_events_per_model_;
  mutable std::mutex mu_;  // guards db_ and every statement on it
  sqlite3* db_ = nullptr;  // owned; closed by the destructor
};

}  // namespace slipway::routing
