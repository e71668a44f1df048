#include "slipway/monitoring/feedback_tracker.h"

#include <cmath>
#include <random>

namespace slipway::monitoring {

using core::Result;
using core::Status;

namespace {

std::string NewId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id(16, '0');
  uint64_t v = rng();
  for (int i = 15; i >= 0; --i, v >>= 4) id[static_cast<size_t>(i)] = kHex[v & 15];
  return id;
}

}  // namespace

Result<std::unique_ptr<FeedbackTracker>> FeedbackTracker::Create(Options options) {
  if (options.inner == nullptr) return Status::InvalidArgument("FeedbackTracker needs an inner service");
  if (options.max_tracked == 0) return Status::InvalidArgument("max_tracked must be >= 1");
  return std::unique_ptr<FeedbackTracker>(new FeedbackTracker(options));
}

FeedbackTracker::Settings FeedbackTracker::SettingsFor(const std::string& model) {
  const auto now = std::chrono::steady_clock::now();
  // Most requests on a thread are for the model the last one was for: no shared lookup then.
  thread_local uint64_t last_owner = 0;
  thread_local std::string last_model;
  thread_local Settings last;
  if (last_owner == instance_ && last_model == model && now - last.fetched < std::chrono::seconds(1)) {
    return last;
  }
  {
    auto table = settings_.Load();
    auto it = table->find(model);
    if (it != table->end() && now - it->second.fetched < std::chrono::seconds(1)) {
      last_owner = instance_;
      last_model = model;
      last = it->second;
      return it->second;
    }
  }
  Settings s;
  s.fetched = now;
  auto config = inner_->GetModelConfig(model, 0);
  if (config.ok() && config->monitoring.feedback.enabled) {
    s.enabled = true;
    s.output = config->monitoring.feedback.output;
    if (s.output.empty() && !config->outputs.empty()) s.output = config->outputs.front().name;
    s.window = static_cast<size_t>(config->monitoring.feedback.window);
    s.min_accuracy = config->monitoring.feedback.min_accuracy;
  }
  if (!config.ok()) return s;  // unknown names are never cached: clients choose them
  std::lock_guard<std::mutex> lock(settings_mu_);
  auto next = std::make_shared<std::map<std::string, Settings>>(*settings_.Load());
  (*next)[model] = s;
  settings_.Store(std::move(next));
  return s;
}

FeedbackTracker::Tracked* FeedbackTracker::FindLocked(std::string_view id) {
  if (index_.empty()) return nullptr;
  const uint64_t key = std::hash<std::string_view>{}(id);
  const size_t mask = index_.size() - 1;
  for (size_t i = key & mask; index_[i].used; i = (i + 1) & mask) {
    if (index_[i].key != key) continue;
    Tracked& t = ring_[index_[i].slot];
    if (t.used && t.id() == id) return &t;
  }
  return nullptr;
}

void FeedbackTracker::UnindexLocked(uint64_t key, size_t slot) {
  // Removes the entry of `slot` (being overwritten or answered), then shifts the
  // entries after it back so every probe chain stays unbroken (no tombstones).
  const size_t mask = index_.size() - 1;
  size_t i = key & mask;
  while (index_[i].used && (index_[i].key != key || index_[i].slot != slot)) i = (i + 1) & mask;
  if (!index_[i].used) return;
  size_t hole = i;
  for (size_t j = (hole + 1) & mask; index_[j].used; j = (j + 1) & mask) {
    const size_t home = index_[j].key & mask;
    // Entry j may fill the hole unless its home lies cyclically in (hole, j].
    const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays) continue;
    index_[hole] = index_[j];
    hole = j;
  }
  index_[hole] = IndexEntry{};
}

void FeedbackTracker::Remember(const std::string& id, const std::string& model, int64_t version,
                               const core::Tensor& output) {
  const int64_t rows = output.shape().empty() ? 1 : std::max<int64_t>(1, output.shape()[0]);
  const uint64_t key = std::hash<std::string_view>{}(id);
  std::lock_guard<std::mutex> lock(mu_);
  if (ring_.empty()) {
    ring_.resize(options_.max_tracked);
    ring_keys_.resize(options_.max_tracked);
    size_t capacity = 2;
    while (capacity < 2 * options_.max_tracked) capacity *= 2;
    index_.resize(capacity);
  }
  // An answer under an id already kept replaces it.
  if (Tracked* old = FindLocked(id)) {
    UnindexLocked(key, static_cast<size_t>(old - ring_.data()));
    old->used = false;
  }
  const size_t slot = next_;
  next_ = (next_ + 1) % ring_.size();
  Tracked& t = ring_[slot];
  if (t.used) UnindexLocked(ring_keys_[slot], slot);
  t.used = false;
  t.rows = 0;
  t.more.clear();
  for (int64_t r = 0; r < rows; ++r) {
    auto p = core::RowPrediction(output, r, rows);
    if (!p) break;
    t.AddRow(*p);
  }
  if (t.rows == 0) return;
  t.used = true;
  t.SetId(id);
  t.model.assign(model);
  t.version = version;
  ring_keys_[slot] = key;
  const size_t mask = index_.size() - 1;
  size_t i = key & mask;
  while (index_[i].used) i = (i + 1) & mask;
  index_[i] = IndexEntry{key, static_cast<uint32_t>(slot), true};
}

void FeedbackTracker::Infer(core::InferRequest request, core::InferCallback done) {
  if (request.id.empty()) request.id = NewId();
  const Settings settings = SettingsFor(request.model_name);
  if (!settings.enabled) return inner_->Infer(std::move(request), std::move(done));
  inner_->Infer(std::move(request), [this, output = settings.output,
                                     done = std::move(done)](Result<core::InferResponse> result) {
    if (result.ok()) {
      for (const core::Tensor& t : result->outputs) {
        if (t.name() != output) continue;
        Remember(result->id, result->model_name, result->model_version, t);
      }
    }
    done(std::move(result));
  });
}

Result<serving::FeedbackResult> FeedbackTracker::Feedback(
    const std::string& model, const std::vector<serving::FeedbackItem>& items) {
  const Settings settings = SettingsFor(model);
  if (!settings.enabled) {
    auto md = inner_->GetModelMetadata(model, 0);
    if (!md.ok() && md.status().code() == core::StatusCode::kNotFound) return md.status();
    return Status::FailedPrecondition("model '" + model + "' does not collect feedback; add "
                                      "`monitoring: {feedback: {}}` to its config");
  }
  serving::FeedbackResult result;
  std::vector<std::pair<int64_t, double>> fell;  // versions whose window fell below the floor
  std::unique_lock<std::mutex> lock(mu_);
  const size_t window = settings.window;
  // Check every item first: a malformed one refuses the whole call and applies nothing.
  for (const auto& item : items) {
    const Tracked* t = FindLocked(item.id);
    if (t == nullptr || t->model != model) continue;
    if (item.truth.size() != t->rows) {
      return Status::InvalidArgument(
          "feedback for id '" + item.id + "' has " + std::to_string(item.truth.size()) +
          " values but its request had " + std::to_string(t->rows) +
          " rows");
    }
  }
  for (const auto& item : items) {
    Tracked* t = FindLocked(item.id);
    if (t == nullptr || t->model != model) {
      result.unknown_ids.push_back(item.id);
      continue;
    }
    Outcomes& o = outcomes_[{model, t->version}];
    for (size_t r = 0; r < item.truth.size(); ++r) {
      const core::Prediction& p = t->Row(r);
      o.classification = p.classification;
      const double outcome = p.classification ? (std::fabs(p.value - item.truth[r]) < 0.5 ? 1 : 0)
                                              : std::fabs(p.value - item.truth[r]);
      o.window.push_back(outcome);
      while (o.window.size() > window) o.window.pop_front();
      ++o.total;
    }
    ++result.applied;
    const int64_t version = t->version;
    UnindexLocked(std::hash<std::string_view>{}(item.id),
                  static_cast<size_t>(t - ring_.data()));  // one truth per answer
    t->used = false;
    if (settings.min_accuracy > 0 && o.classification && o.window.size() >= window) {
      double sum = 0;
      for (double v : o.window) sum += v;
      const double accuracy = sum / static_cast<double>(o.window.size());
      const bool below = accuracy < settings.min_accuracy;
      if (below && !o.below) fell.emplace_back(version, accuracy);
      o.below = below;
    }
  }
  lock.unlock();
  if (options_.on_low_accuracy) {
    for (const auto& [version, accuracy] : fell) options_.on_low_accuracy(model, version, accuracy);
  }
  return result;
}

Result<std::vector<serving::VersionAccuracy>> FeedbackTracker::Accuracy(
    const std::string& model) const {
  auto md = inner_->GetModelMetadata(model, 0);
  if (!md.ok() && md.status().code() == core::StatusCode::kNotFound) return md.status();
  std::vector<serving::VersionAccuracy> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, o] : outcomes_) {
    if (key.first != model) continue;
    serving::VersionAccuracy a;
    a.version = key.second;
    a.feedback = o.total;
    a.window = o.window.size();
    double sum = 0;
    for (double v : o.window) sum += v;
    const double mean = o.window.empty() ? 0 : sum / static_cast<double>(o.window.size());
    if (o.classification) {
      a.accuracy = mean;
    } else {
      a.mean_abs_error = mean;
    }
    out.push_back(a);
  }
  return out;
}

std::optional<double> FeedbackTracker::WindowAccuracy(const std::string& model, int64_t version,
                                                      uint64_t min_rows) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = outcomes_.find({model, version});
  if (it == outcomes_.end() || !it->second.classification ||
      it->second.window.size() < std::max<uint64_t>(1, min_rows)) {
    return std::nullopt;
  }
  double sum = 0;
  for (double v : it->second.window) sum += v;
  return sum / static_cast<double>(it->second.window.size());
}

}  // namespace slipway::monitoring
