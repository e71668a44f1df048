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

// One request of one row per label (a batch when there are several).
void SendRows(FeedbackTracker& tracker, const std::string& id, const std::vector<int64_t>& labels) {
  core::InferRequest request;
  request.id = id;
  request.model_name = "m";
  std::string bytes(reinterpret_cast<const char*>(labels.data()), labels.size() * sizeof(int64_t));
  request.inputs.push_back(core::Tensor::Owned(
      "x", core::DataType::kInt64, {static_cast<int64_t>(labels.size()), 1}, bytes));
  bool answered = false;
  tracker.Infer(std::move(request), [&](core::Result<core::InferResponse> r) {
    ASSERT_TRUE(r.ok());
    answered = true;
  });
  ASSERT_TRUE(answered);
}

void Send(FeedbackTracker& tracker, const std::string& id, int64_t label) {
  SendRows(tracker, id, {label});
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

// Ids short enough to be kept in the slot and longer ones, single rows and batches, and slots
// reused by answers of another kind: each answer is found under its own id with its own rows.
TEST(FeedbackTrackerTest, IdsOfAnyLengthAndBatchesKeepTheirOwnRows) {
  LabelService inner;
  auto tracker = Make(inner, 3);
  const std::string at_limit(47, 'a'), over(48, 'b'), long_id(300, 'c');
  for (const std::string& first : {at_limit, over, long_id}) {
    SendRows(*tracker, first, {1, 0, 1});  // a batch of three rows
    SendRows(*tracker, "s", {0});
    SendRows(*tracker, first + "!", {1});
    // The batch's rows, in order: two right, one wrong.
    auto r = tracker->Feedback("m", {{first, {1.0, 0.0, 0.0}}, {first + "!", {1.0}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->applied, 2u);
    EXPECT_TRUE(r->unknown_ids.empty());
    // The three slots are taken over by short ids and single rows: the long answers are gone.
    for (const char* id : {"x", "y", "z"}) Send(*tracker, id, 1);
    auto gone = tracker->Feedback("m", {{first, {1.0, 0.0, 1.0}}, {"s", {0.0}}, {"z", {1.0}}});
    ASSERT_TRUE(gone.ok());
    EXPECT_EQ(gone->applied, 1u);
    EXPECT_EQ(gone->unknown_ids, (std::vector<std::string>{first, "s"}));
  }
  // A single row in a slot that held a batch has one row: three values are refused.
  SendRows(*tracker, "batch", {1, 1, 1});
  for (const char* id : {"p", "q", "single"}) Send(*tracker, id, 1);
  auto refused = tracker->Feedback("m", {{"single", {1.0, 1.0, 1.0}}});
  EXPECT_FALSE(refused.ok());
  auto accuracy = tracker->Accuracy("m");
  ASSERT_TRUE(accuracy.ok());
  ASSERT_EQ(accuracy->size(), 1u);
  // Three times: the batch's 3 rows (2 right), the "!" row and the "z" row (both right).
  EXPECT_EQ((*accuracy)[0].feedback, 15u);
  ASSERT_TRUE((*accuracy)[0].accuracy.has_value());
  EXPECT_DOUBLE_EQ(*(*accuracy)[0].accuracy, 12.0 / 15.0);
}

}  // namespace
}  // namespace slipway::monitoring
