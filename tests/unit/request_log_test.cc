// RequestLogger's access log with several request threads: every line arrives, whole, and the
// file is in time order although each thread queues its lines separately.
#include "slipway/monitoring/request_log.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_service.h"

namespace slipway::monitoring {
namespace {

class AnswerService : public testing_support::FakeService {
 public:
  void Infer(core::InferRequest request, core::InferCallback done) override {
    if (request.model_name == "bad") {
      return done(core::Status::InvalidArgument("input \"x\\y\"\nhas a\ttab and \x01"));
    }
    if (request.model_name != "m") return done(core::Status::NotFound("unknown model"));
    core::InferResponse r;
    r.model_name = request.model_name;
    r.model_version = 3;
    r.id = request.id;
    r.route = "stable";
    r.queue_ns = 1'234'567;     // 1.234 ms
    r.compute_ns = 56'789'012;  // 56.789 ms
    r.batch_rows = 7;
    done(std::move(r));
  }
};

TEST(RequestLogger, LinesFromManyThreadsAllArriveInTimeOrder) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("slipway-access-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  AnswerService inner;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 3000;
  {
    RequestLogger::Options o;
    o.inner = &inner;
    o.access_log = path.string();
    auto logger = RequestLogger::Create(o).value();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&logger, t] {
        for (int i = 0; i < kPerThread; ++i) {
          core::InferRequest request;
          // Every 100th asks for a model that is not there: its line carries the request's id.
          request.model_name = i % 100 == 0 ? "a-model-name-longer-than-thirty-one-chars" : "m";
          request.id = "t" + std::to_string(t) + "-" + std::to_string(i);
          logger->Infer(std::move(request), [](core::Result<core::InferResponse>) {});
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(logger->dropped_lines(), 0u);
  }  // the destructor writes what is queued
  std::ifstream in(path);
  std::string line;
  std::string last_time;
  std::set<std::string> ids;
  int errors = 0;
  simdjson::dom::parser parser;
  while (std::getline(in, line)) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    const std::string time(doc["time"].get_string().value());
    ASSERT_EQ(time.size(), 24u) << line;  // 2026-11-30T11:02:03.456Z
    EXPECT_NE(time.substr(0, 4), "0000") << "never stamped: " << line;
    EXPECT_LE(last_time, time) << "out of time order: " << line;
    last_time = time;
    ids.insert(std::string(doc["id"].get_string().value()));
    if (doc["status"].get_string().value() != "OK") {
      ++errors;
      EXPECT_EQ(doc["model"].get_string().value(), "a-model-name-longer-than-thirty-one-chars");
    } else {
      EXPECT_EQ(doc["model"].get_string().value(), "m");
      EXPECT_EQ(doc["route"].get_string().value(), "stable");
      EXPECT_EQ(doc["version"].get_int64().value(), 3);
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(errors, kThreads * kPerThread / 100);
  std::filesystem::remove(path);
}

// Every field of a line, and strings that need escaping (an error message, an id a client chose)
// come out as valid JSON holding exactly what was given.
TEST(RequestLogger, LinesCarryEveryFieldAndEscapeWhatNeedsIt) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("slipway-access-fields-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  AnswerService inner;
  {
    RequestLogger::Options o;
    o.inner = &inner;
    o.access_log = path.string();
    auto logger = RequestLogger::Create(o).value();
    core::InferRequest ok;
    ok.model_name = "m";
    ok.id = "quote\"back\\slash";
    logger->Infer(std::move(ok), [](core::Result<core::InferResponse>) {});
    core::InferRequest bad;
    bad.model_name = "bad";
    bad.model_version = 12;
    bad.id = "b-1";
    logger->Infer(std::move(bad), [](core::Result<core::InferResponse>) {});
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  simdjson::dom::parser parser;
  simdjson::dom::element first;
  ASSERT_EQ(parser.parse(lines[0]).get(first), simdjson::SUCCESS) << lines[0];
  EXPECT_EQ(first["id"].get_string().value(), "quote\"back\\slash");
  EXPECT_EQ(first["model"].get_string().value(), "m");
  EXPECT_EQ(first["version"].get_int64().value(), 3);
  EXPECT_EQ(first["route"].get_string().value(), "stable");
  EXPECT_EQ(first["status"].get_string().value(), "OK");
  EXPECT_EQ(first["queue_ms"].get_double().value(), 1.234);
  EXPECT_EQ(first["compute_ms"].get_double().value(), 56.789);
  EXPECT_GE(first["total_ms"].get_double().value(), 0.0);
  EXPECT_EQ(first["batch_rows"].get_int64().value(), 7);
  EXPECT_EQ(first["error"].error(), simdjson::NO_SUCH_FIELD);
  // Milliseconds keep three decimals as written, so 1.234 is not 1.2340000001.
  EXPECT_NE(lines[0].find("\"queue_ms\":1.234,"), std::string::npos) << lines[0];
  simdjson::dom::element second;
  ASSERT_EQ(parser.parse(lines[1]).get(second), simdjson::SUCCESS) << lines[1];
  EXPECT_EQ(second["id"].get_string().value(), "b-1");
  EXPECT_EQ(second["model"].get_string().value(), "bad");
  EXPECT_EQ(second["version"].get_int64().value(), 12);  // the version asked for
  EXPECT_EQ(second["status"].get_string().value(), "INVALID_ARGUMENT");
  EXPECT_EQ(second["error"].get_string().value(), "input \"x\\y\"\nhas a\ttab and \x01");
  EXPECT_EQ(second["queue_ms"].get_double().value(), 0.0);
  EXPECT_EQ(second["batch_rows"].get_int64().value(), 0);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace slipway::monitoring
