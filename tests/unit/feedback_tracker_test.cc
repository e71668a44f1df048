// FeedbackTracker against a fake inner service: which answers stay remembered for ground truth
// (the most recent max_tracked, each judged once), checked against a plain reference model under
// heavy churn so the tracker's ring and its open-addressing index are exercised together.
#include "slipway/monitoring/feedback_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <set>

#include "support/fake_service.h"

namespace slipway::monitoring {
namespace {

// Answers every request with a single INT64 class label per row: the request's first input value.
class LabelService : public testing_support::FakeService {
 public:
  void Infer(core::InferRequest request, core::InferCallback done) override {
    core::InferResponse r;
    r.id = request.id;
    r.model_name = request.model_name;
    r.model_version = 1;
    const auto& in = request.inputs.front();
    r.outputs.push_back(core::Tensor::Owned("label", core::DataType::kInt64, in.shape(),
                                            std::string(in.bytes())));
    done(std::move(r));
  }
  core::Result<serving::ModelMetadata> GetModelMetadata(const std::string& name,
                                                        int64_t) const override {
    if (name != "m") return core::Status::NotFound("unknown model '" + name + "'");
    return serving::ModelMetadata{};
  }
  LabelService() {
    core::ModelConfig c;
    c.name = "m";
    c.max_batch_size = 8;
    c.monitoring.feedback.enabled = true;
    c.monitoring.feedback.output = "label";
    c.monitoring.feedback.window = 1 << 20;
    configs["m"] = c;
  }
};

void Send(FeedbackTracker& tracker, const std::string& id, int64_t label) {
  core::InferRequest request;
  request.id = id;
  request.model_name = "m";
  std::string bytes(reinterpret_cast<const char*>(&label), sizeof(label));
  request.inputs.push_back(core::Tensor::Owned("x", core::DataType::kInt64, {1, 1}, bytes));
  bool answered = false;
  tracker.Infer(std::move(request), [&](core::Result<core::InferResponse> r) {
    ASSERT_TRUE(r.ok());
    answered = true;
  });
  ASSERT_TRUE(answered);
}

std::unique_ptr<FeedbackTracker> Make(LabelService& inner, size_t max_tracked) {
  FeedbackTracker::Options o;
  o.inner = &inner;
  o.max_tracked = max_tracked;
  auto t = FeedbackTracker::Create(o);
  EXPECT_TRUE(t.ok());
  return std::move(*t);
}

TEST(FeedbackTrackerTest, KeepsTheMostRecentAnswersAndJudgesEachOnce) {
  LabelService inner;
  auto tracker = Make(inner, 100);
  for (int i = 0; i < 250; ++i) Send(*tracker, "r" + std::to_string(i), i % 2);
  std::vector<serving::FeedbackItem> items;
  for (int i = 0; i < 250; ++i) items.push_back({"r" + std::to_string(i), {0.0}});
  auto result = tracker->Feedback("m", items);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->applied, 100u);
  ASSERT_EQ(result->unknown_ids.size(), 150u);
  EXPECT_EQ(result->unknown_ids.front(), "r0");
  EXPECT_EQ(result->unknown_ids.back(), "r149");
  // Truth 0 against labels alternating 0/1 from r150: half right.
  auto accuracy = tracker->Accuracy("m");
  ASSERT_TRUE(accuracy.ok());
  ASSERT_EQ(accuracy->size(), 1u);
  EXPECT_DOUBLE_EQ(*accuracy->front().accuracy, 0.5);
  // Already judged: unknown now.
  auto again = tracker->Feedback("m", {{"r200", {1.0}}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->applied, 0u);
  EXPECT_EQ(again->unknown_ids.size(), 1u);
}

TEST(FeedbackTrackerTest, ARepeatedIdKeepsOnlyItsLatestAnswer) {
  LabelService inner;
  auto tracker = Make(inner, 10);
  Send(*tracker, "same", 0);
  Send(*tracker, "same", 1);
  auto wrong_rows = tracker->Feedback("m", {{"same", {1.0, 1.0}}});
  EXPECT_FALSE(wrong_rows.ok());  // refused whole: the answer had one row
  auto result = tracker->Feedback("m", {{"same", {1.0}}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->applied, 1u);
  EXPECT_DOUBLE_EQ(*tracker->Accuracy("m")->front().accuracy, 1.0);
  // Nine more answers leave room: the replaced entry did not hold a second slot's worth of ids.
  for (int i = 0; i < 9; ++i) Send(*tracker, "n" + std::to_string(i), 0);
  EXPECT_EQ(tracker->Feedback("m", {{"n0", {0.0}}})->applied, 1u);
}

TEST(FeedbackTrackerTest, MatchesAReferenceModelUnderChurn) {
  LabelService inner;
  constexpr size_t kMax = 500;
  auto tracker = Make(inner, kMax);
  std::mt19937_64 rng(7);
  std::deque<std::string> recent;  // the reference: ids of the last kMax answers, oldest first
  std::set<std::string> judged;    // answers in `recent` already given their truth
  uint64_t next = 0;
  for (int round = 0; round < 40; ++round) {
    const int sends = static_cast<int>(rng() % 400);
    for (int i = 0; i < sends; ++i) {
      const std::string id = "id-" + std::to_string(next++);
      Send(*tracker, id, 1);
      recent.push_back(id);
      if (recent.size() > kMax) {
        judged.erase(recent.front());
        recent.pop_front();
      }
    }
    // Feedback for a random mix of recent, long-gone and never-seen ids.
    std::vector<serving::FeedbackItem> items;
    std::set<std::string> asked;
    for (int i = 0; i < 120; ++i) {
      const uint64_t pick = next == 0 ? 0 : rng() % (next + 50);
      const std::string id = "id-" + std::to_string(pick);
      if (!asked.insert(id).second) continue;
      items.push_back({id, {1.0}});
    }
    uint64_t expected = 0;
    for (const auto& item : items) {
      const bool kept = std::find(recent.begin(), recent.end(), item.id) != recent.end();
      if (kept && judged.insert(item.id).second) ++expected;
    }
    auto result = tracker->Feedback("m", items);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->applied, expected) << "round " << round;
    EXPECT_EQ(result->unknown_ids.size(), items.size() - expected);
  }
}

}  // namespace
}  // namespace slipway::monitoring
