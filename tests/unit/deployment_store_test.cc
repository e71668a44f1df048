#include "slipway/routing/deployment_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace slipway::routing {
namespace {

namespace fs = std::filesystem;

class DeploymentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/deployment_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<DeploymentStore> Open(const std::string& path) {
    auto store = DeploymentStore::Create({.path = path});
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Reads one integer or text pragma straight from the file, bypassing the store.
  static std::string RawQuery(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    std::string out;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return out;
  }

  fs::path dir_;
};

DeploymentEvent Event(const std::string& model, const std::string& kind, int64_t version = 0) {
  DeploymentEvent e;
  e.model = model;
  e.kind = kind;
  e.version = version;
  return e;
}

TEST_F(DeploymentStoreTest, RecordAssignsIdsAndTimeAndRoundTripsFields) {
  auto store = Open((dir_ / "d.db").string());
  ASSERT_NE(store, nullptr);
  const int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  auto first = store->Record(Event("resnet", "load", 3));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_GT(first->id, 0);
  EXPECT_GE(first->time_ms, before);
  EXPECT_LT(first->time_ms, before + 60'000);
  EXPECT_EQ(first->details_json, "{}");

  DeploymentEvent e = Event("resnet", "rollback", 4);
  e.id = 999;  // ignored
  e.time_ms = 1'700'000'000'123;
  e.reason = "p99 latency 41 ms > 30 ms — rolled back";
  e.details_json = R"({"p99_ms": 41.5, "errors": [1, 2]})";
  auto second = store->Record(e);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_GT(second->id, first->id);
  EXPECT_NE(second->id, 999);
  EXPECT_EQ(second->time_ms, 1'700'000'000'123);

  auto history = store->History("resnet", 10);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  const DeploymentEvent& got = (*history)[0];
  EXPECT_EQ(got.id, second->id);
  EXPECT_EQ(got.time_ms, e.time_ms);
  EXPECT_EQ(got.model, "resnet");
  EXPECT_EQ(got.kind, "rollback");
  EXPECT_EQ(got.version, 4);
  EXPECT_EQ(got.reason, e.reason);
  EXPECT_EQ(got.details_json, e.details_json);
}

TEST_F(DeploymentStoreTest, HistoryIsNewestFirstAndLimited) {
  auto store = Open(":memory:");
  ASSERT_NE(store, nullptr);
  std::vector<int64_t> ids;
  for (int v = 1; v <= 5; ++v) ids.push_back(store->Record(Event("m", "load", v))->id);

  auto three = store->History("m", 3);
  ASSERT_TRUE(three.ok());
  ASSERT_EQ(three->size(), 3u);
  EXPECT_EQ((*three)[0].id, ids[4]);
  EXPECT_EQ((*three)[1].id, ids[3]);
  EXPECT_EQ((*three)[2].id, ids[2]);
  EXPECT_EQ((*three)[0].version, 5);

  EXPECT_EQ(store->History("m", 100)->size(), 5u);
  EXPECT_EQ(store->History("m", static_cast<size_t>(-1))->size(), 5u);
  EXPECT_TRUE(store->History("m", 0)->empty());
}

TEST_F(DeploymentStoreTest, EachModelKeepsItsNewestEvents) {
  auto created = DeploymentStore::Create({.path = ":memory:", .max_events_per_model = 4});
  ASSERT_TRUE(created.ok()) << created.status().message();
  auto& store = *created;
  for (int v = 1; v <= 10; ++v) {
    ASSERT_TRUE(store->Record(Event("busy", "traffic", v)).ok());
    if (v <= 2) {
      ASSERT_TRUE(store->Record(Event("quiet", "load", v)).ok());
    }
  }
  auto busy = store->History("busy", 100);
  ASSERT_TRUE(busy.ok());
  ASSERT_EQ(busy->size(), 4u);  // versions 10, 9, 8, 7: the oldest six are gone
  EXPECT_EQ(busy->front().version, 10);
  EXPECT_EQ(busy->back().version, 7);
  // Another model's pruning leaves this one's events alone.
  EXPECT_EQ(store->History("quiet", 100)->size(), 2u);
  EXPECT_EQ(store->History("", 100)->size(), 6u);

  auto unbounded = DeploymentStore::Create({.path = ":memory:", .max_events_per_model = 0});
  ASSERT_TRUE(unbounded.ok());
  for (int v = 1; v <= 20; ++v) ASSERT_TRUE((*unbounded)->Record(Event("m", "load", v)).ok());
  EXPECT_EQ((*unbounded)->History("m", 100)->size(), 20u);
}

TEST_F(DeploymentStoreTest, HistoryFiltersByModelAndEmptyMeansAll) {
  auto store = Open(":memory:");
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store->Record(Event("a", "traffic")).ok());
    ASSERT_TRUE(store->Record(Event("b", "label")).ok());
  }
  auto a = store->History("a", 100);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 3u);
  for (const auto& e : *a) EXPECT_EQ(e.model, "a");

  auto all = store->History("", 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 6u);
  EXPECT_EQ((*all)[0].model, "b");
  EXPECT_EQ((*all)[1].model, "a");
  for (size_t i = 1; i < all->size(); ++i) EXPECT_GT((*all)[i - 1].id, (*all)[i].id);

  EXPECT_TRUE(store->History("unknown", 100)->empty());
  EXPECT_TRUE(store->History("'; DROP TABLE deployment_events; --", 10)->empty());
  EXPECT_EQ(store->History("", 100)->size(), 6u);
}

TEST_F(DeploymentStoreTest, RecordRejectsBadEventsAndStoresNothing) {
  auto store = Open(":memory:");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Record(Event("", "load")).status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Record(Event("m", "")).status().code(), core::StatusCode::kInvalidArgument);
  for (const char* bad : {"{", "[1, 2]", "42", "not json"}) {
    DeploymentEvent e = Event("m", "promote");
    e.details_json = bad;
    auto r = store->Record(e);
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("details_json"), std::string::npos);
  }
  EXPECT_TRUE(store->History("", 100)->empty());
}

TEST_F(DeploymentStoreTest, StatesUpsertDeleteAndLoad) {
  auto store = Open(":memory:");
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->LoadStates()->empty());
  ASSERT_TRUE(store->SaveState("a", R"({"step": 1})").ok());
  ASSERT_TRUE(store->SaveState("b", R"({"step": 7})").ok());
  ASSERT_TRUE(store->SaveState("a", R"({"step": 2})").ok());  // replaces
  auto states = store->LoadStates();
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(*states,
            (std::map<std::string, std::string>{{"a", R"({"step": 2})"}, {"b", R"({"step": 7})"}}));

  ASSERT_TRUE(store->DeleteState("a").ok());
  ASSERT_TRUE(store->DeleteState("never-saved").ok());
  EXPECT_EQ(store->LoadStates().value(),
            (std::map<std::string, std::string>{{"b", R"({"step": 7})"}}));

  EXPECT_EQ(store->SaveState("b", "{broken").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->SaveState("", "{}").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->LoadStates()->at("b"), R"({"step": 7})");  // untouched by the failures
}

TEST_F(DeploymentStoreTest, PersistsAcrossReopeningTheSameFile) {
  const std::string path = (dir_ / "nested" / "deeper" / "deployments.db").string();
  int64_t last_id = 0;
  {
    auto store = Open(path);  // creates the missing folders
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Record(Event("m", "load", 1)).ok());
    last_id = store->Record(Event("m", "rollout_start", 2))->id;
    ASSERT_TRUE(store->SaveState("m", R"({"canary": 2})").ok());
  }
  EXPECT_EQ(RawQuery(path, "PRAGMA user_version"), "1");
  EXPECT_EQ(RawQuery(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawQuery(path,
                     "SELECT name FROM sqlite_master WHERE type = 'index' AND"
                     " tbl_name = 'deployment_events' AND sql LIKE '%(model, id)%'"),
            "deployment_events_by_model");

  auto store = Open(path);
  ASSERT_NE(store, nullptr);
  auto history = store->History("m", 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].kind, "rollout_start");
  EXPECT_EQ((*history)[1].kind, "load");
  EXPECT_EQ(store->LoadStates()->at("m"), R"({"canary": 2})");
  EXPECT_GT(store->Record(Event("m", "promote", 2))->id, last_id);
}

TEST_F(DeploymentStoreTest, CorruptFileIsAnErrorNamingThePath) {
  const std::string path = (dir_ / "garbage.db").string();
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((i * 131 + 7) % 251));
  }
  auto store = DeploymentStore::Create({.path = path});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().message();
  EXPECT_NE(store.status().message().find("not a database"), std::string::npos)
      << store.status().message();
}

TEST_F(DeploymentStoreTest, UnopenablePathsAreErrorsNamingThePath) {
  const fs::path file = dir_ / "plain-file";
  std::ofstream(file) << "x";
  const std::string under_file = (file / "sub" / "d.db").string();  // its folder cannot exist
  auto r1 = DeploymentStore::Create({.path = under_file});
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find(under_file), std::string::npos) << r1.status().message();

  auto r2 = DeploymentStore::Create({.path = dir_.string()});  // a folder, not a file
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find(dir_.string()), std::string::npos) << r2.status().message();

  EXPECT_EQ(DeploymentStore::Create({.path = ""}).status().code(),
            core::StatusCode::kInvalidArgument);
}

TEST_F(DeploymentStoreTest, NewerSchemaVersionIsRefused) {
  const std::string path = (dir_ / "future.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = DeploymentStore::Create({.path = path});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("schema version is 2"), std::string::npos);
}

TEST_F(DeploymentStoreTest, MemoryStoresWorkAndAreIndependent) {
  auto one = Open(":memory:");
  auto two = Open(":memory:");
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);
  ASSERT_TRUE(one->Record(Event("m", "upload", 1)).ok());
  ASSERT_TRUE(one->SaveState("m", "{}").ok());
  EXPECT_EQ(one->History("", 10)->size(), 1u);
  EXPECT_EQ(one->LoadStates()->size(), 1u);
  EXPECT_TRUE(two->History("", 10)->empty());
  EXPECT_TRUE(two->LoadStates()->empty());
}

TEST_F(DeploymentStoreTest, ConcurrentRecordsGetUniqueIdsAndAreAllStored) {
  auto store = Open((dir_ / "concurrent.db").string());
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store->Record(Event("model-" + std::to_string(t), "rollout_step", i + 1));
        if (r.ok()) ids[t].push_back(r->id);
        if (i % 10 == 0) (void)store->History("", 5);  // readers interleave with writers
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::set<int64_t> unique;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(ids[t].size(), static_cast<size_t>(kPerThread));
    unique.insert(ids[t].begin(), ids[t].end());
    auto mine = store->History("model-" + std::to_string(t), 1000);
    ASSERT_TRUE(mine.ok());
    EXPECT_EQ(mine->size(), static_cast<size_t>(kPerThread));
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(store->History("", 10'000)->size(), static_cast<size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace slipway::routing
