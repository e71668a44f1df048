#include "slipway/routing/deployment_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <string_view>
#include <system_error>

namespace slipway::routing {
namespace {

constexpr int64_t kSchemaVersion = 1;
constexpr std::string_view kMemoryPath = ":memory:";

core::StatusCode CodeFor(int rc) {
  using Code = core::StatusCode;
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PERM:
    case SQLITE_READONLY: return Code::kUnavailable;
    case SQLITE_FULL: return Code::kResourceExhausted;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return Code::kFailedPrecondition;
    case SQLITE_TOOBIG:
    case SQLITE_CONSTRAINT: return Code::kInvalidArgument;
    default: return Code::kInternal;
  }
}

// Schema version 1, created in one transaction on a new database.
constexpr const char* kSchemaV1[] = {
    "CREATE TABLE IF NOT EXISTS deployment_events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time_ms INTEGER NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL,"
    " version INTEGER NOT NULL, reason TEXT NOT NULL, details_json TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS deployment_events_by_model ON deployment_events (model, id)",
    "CREATE TABLE IF NOT EXISTS deployment_states (model TEXT PRIMARY KEY,"
    " state_json TEXT NOT NULL, updated_ms INTEGER NOT NULL)",
    "PRAGMA user_version = 1",
};

core::Status Fail(sqlite3* db, int rc, const std::string& path, const std::string& what) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return {CodeFor(rc), "deployment store '" + path + "': " + what + ": " + message};
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One prepared statement; values go in through Bind only, in parameter order.
class Statement {
 public:
  static core::Result<Statement> Prepare(sqlite3* db, const std::string& path, const char* sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
    Statement statement(db, path, raw);
    if (rc != SQLITE_OK) return Fail(db, rc, path, std::string("preparing \"") + sql + "\"");
    return statement;
  }

  template <typename... Values>
  Statement& Bind(const Values&... values) {
    (BindOne(values), ...);
    return *this;
  }

  // True while there is a row to read; false once the statement is done.
  core::Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return Fail(db_, bind_rc_, *path_, "binding " + Sql());
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Fail(db_, rc, *path_, "running " + Sql());
  }
  core::Status Run() {
    for (;;) {
      ASSIGN_OR_RETURN(bool row, Step());
      if (!row) return core::Status::Ok();
    }
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
  std::string Text(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), column));
    if (text == nullptr) return {};
    return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), column)));
  }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  Statement(sqlite3* db, const std::string& path, sqlite3_stmt* stmt)
      : db_(db), path_(&path), stmt_(stmt) {}
  void BindOne(int64_t value) { Check(sqlite3_bind_int64(stmt_.get(), next_++, value)); }
  void BindOne(const std::string& value) {
    Check(sqlite3_bind_text64(stmt_.get(), next_++, value.data(), value.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
  }
  void Check(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  std::string Sql() const { return std::string("\"") + sqlite3_sql(stmt_.get()) + "\""; }

  sqlite3* db_;
  const std::string* path_;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  int next_ = 1;
  int bind_rc_ = SQLITE_OK;
};

// Runs a statement whose rows, if any, do not matter.
template <typename... Values>
core::Status Exec(sqlite3* db, const std::string& path, const char* sql, const Values&... values) {
  ASSIGN_OR_RETURN(Statement statement, Statement::Prepare(db, path, sql));
  statement.Bind(values...);
  return statement.Run();
}

}  // namespace

core::Result<std::unique_ptr<DeploymentStore>> DeploymentStore::Create(Options options) {
  if (options.path.empty()) {
    return core::Status::InvalidArgument("deployment store: path is empty");
  }
  std::unique_ptr<DeploymentStore> store(new DeploymentStore(std::move(options.path), options.max_events_per_model));
  RETURN_IF_ERROR(store->Open(options.busy_timeout_ms));
  return store;
}

DeploymentStore::~DeploymentStore() { sqlite3_close_v2(db_); }

core::Status DeploymentStore::Open(int busy_timeout_ms) {
  const bool memory = path_ == kMemoryPath;
  if (!memory) {
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      return core::Status::Unavailable("deployment store '" + path_ + "': cannot create folder '" +
                                       parent.string() + "': " + ec.message());
    }
  }
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) return Fail(db_, rc, path_, "cannot open");
  sqlite3_busy_timeout(db_, busy_timeout_ms);
  if (!memory) {
    // The first statement reads the file, so this is where a file that is not a database fails.
    ASSIGN_OR_RETURN(Statement wal, Statement::Prepare(db_, path_, "PRAGMA journal_mode=WAL"));
    ASSIGN_OR_RETURN(bool has_row, wal.Step());
    const std::string mode = has_row ? wal.Text(0) : "";
    if (mode != "wal") {
      return core::Status::FailedPrecondition("deployment store '" + path_ +
                                              "': journal mode is '" + mode + "', expected 'wal'");
    }
    RETURN_IF_ERROR(Exec(db_, path_, "PRAGMA synchronous=NORMAL"));
  }
  return CreateSchema();
}

core::Status DeploymentStore::CreateSchema() {
  ASSIGN_OR_RETURN(Statement read_version, Statement::Prepare(db_, path_, "PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool has_row, read_version.Step());
  const int64_t version = has_row ? read_version.Int(0) : 0;
  if (version == kSchemaVersion) return core::Status::Ok();
  if (version > kSchemaVersion) {
    return core::Status::FailedPrecondition("deployment store '" + path_ + "': schema version is " +
                                            std::to_string(version) + ", this server knows up to " +
                                            std::to_string(kSchemaVersion));
  }
  // Version 0: a new database. IMMEDIATE so two processes creating it at once take turns.
  RETURN_IF_ERROR(Exec(db_, path_, "BEGIN IMMEDIATE"));
  core::Status status;
  for (const char* sql : kSchemaV1) {
    if (status.ok()) status = Exec(db_, path_, sql);
  }
  if (status.ok()) status = Exec(db_, path_, "COMMIT");
  if (!status.ok()) (void)Exec(db_, path_, "ROLLBACK");
  return status;
}

core::Status DeploymentStore::CheckJsonObject(const std::string& what,
                                              const std::string& json) const {
  ASSIGN_OR_RETURN(
      Statement check,
      Statement::Prepare(db_, path_, "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) END"));
  check.Bind(json);
  ASSIGN_OR_RETURN(bool has_row, check.Step());
  if (has_row && check.Text(0) == "object") return core::Status::Ok();
  constexpr size_t kShown = 80;
  return core::Status::InvalidArgument("deployment store: " + what + " is not a JSON object: '" +
                                       json.substr(0, kShown) +
                                       (json.size() > kShown ? "...'" : "'"));
}

core::Result<DeploymentEvent> DeploymentStore::Record(DeploymentEvent event) {
  if (event.model.empty()) return core::Status::InvalidArgument("deployment event: model is empty");
  if (event.kind.empty()) {
    return core::Status::InvalidArgument("deployment event for model '" + event.model +
                                         "': kind is empty");
  }
  if (event.details_json.empty()) event.details_json = "{}";
  if (event.time_ms == 0) event.time_ms = NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CheckJsonObject(
      "details_json of a '" + event.kind + "' event for model '" + event.model + "'",
      event.details_json));
  RETURN_IF_ERROR(Exec(db_, path_,
                       "INSERT INTO deployment_events"
                       " (time_ms, model, kind, version, reason, details_json)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       event.time_ms, event.model, event.kind, event.version, event.reason,
                       event.details_json));
  event.id = sqlite3_last_insert_rowid(db_);
  if (max_events_per_model_ > 0) {
    // The model's events older than its newest max_events_per_model_ (the index on (model, id)
    // finds the cut and the rows).
    RETURN_IF_ERROR(Exec(db_, path_,
                         "DELETE FROM deployment_events WHERE model = ? AND id <= ("
                         "SELECT id FROM deployment_events WHERE model = ?"
                         " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                         event.model, event.model, static_cast<int64_t>(max_events_per_model_)));
  }
  return event;
}

core::Result<std::vector<DeploymentEvent>> DeploymentStore::History(const std::string& model,
                                                                    size_t limit) const {
  const auto max_limit = static_cast<size_t>(std::numeric_limits<int64_t>::max());
  const auto sql_limit = static_cast<int64_t>(std::min(limit, max_limit));
  std::lock_guard<std::mutex> lock(mu_);
  // Two fixed queries rather than "? = '' OR model = ?", so the filtered one uses the index.
  ASSIGN_OR_RETURN(
      Statement query,
      Statement::Prepare(db_, path_,
                         model.empty() ? "SELECT id, time_ms, model, kind, version, reason,"
                                         " details_json FROM deployment_events"
                                         " ORDER BY id DESC LIMIT ?"
                                       : "SELECT id, time_ms, model, kind, version, reason,"
                                         " details_json FROM deployment_events"
                                         " WHERE model = ? ORDER BY id DESC LIMIT ?"));
  if (!model.empty()) query.Bind(model);
  query.Bind(sql_limit);
  std::vector<DeploymentEvent> events;
  for (;;) {
    ASSIGN_OR_RETURN(bool has_row, query.Step());
    if (!has_row) return events;
    events.push_back({query.Int(0), query.Int(1), query.Text(2), query.Text(3), query.Int(4),
                      query.Text(5), query.Text(6)});
  }
}

core::Status DeploymentStore::SaveState(const std::string& model, const std::string& state_json) {
  if (model.empty()) return core::Status::InvalidArgument("deployment state: model is empty");
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CheckJsonObject("state of model '" + model + "'", state_json));
  return Exec(db_, path_,
              "INSERT INTO deployment_states (model, state_json, updated_ms) VALUES (?, ?, ?)"
              " ON CONFLICT (model) DO UPDATE SET state_json = excluded.state_json,"
              " updated_ms = excluded.updated_ms",
              model, state_json, NowMs());
}

core::Status DeploymentStore::DeleteState(const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  return Exec(db_, path_, "DELETE FROM deployment_states WHERE model = ?", model);
}

core::Result<std::map<std::string, std::string>> DeploymentStore::LoadStates() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      Statement query,
      Statement::Prepare(db_, path_, "SELECT model, state_json FROM deployment_states"));
  std::map<std::string, std::string> states;
  for (;;) {
    ASSIGN_OR_RETURN(bool has_row, query.Step());
    if (!has_row) return states;
    states.emplace(query.Text(0), query.Text(1));
  }
}

}  // namespace slipway::routing
