#include "slipway/scheduler/batch_queue.h"

#include <algorithm>

namespace slipway::scheduler {

using core::Status;

std::string BatchSignature(const core::InferRequest& request,
                           const std::vector<size_t>& input_order,
                           const std::vector<std::string>& output_names, bool batching) {
  std::string sig;
  for (size_t index : input_order) {
    const core::Shape& shape = request.inputs[index].shape();
    for (size_t d = batching ? 1 : 0; d < shape.size(); ++d) sig += std::to_string(shape[d]) + ",";
    sig += ";";
  }
  sig += "|";
  for (const auto& name : output_names) sig += name + ";";
  return sig;
}

BatchQueue::BatchQueue(BatchingConfig config) : config_(std::move(config)) {
  config_.priority_levels = std::max<int64_t>(1, config_.priority_levels);
  config_.default_priority =
      std::clamp<int64_t>(config_.default_priority, 1, config_.priority_levels);
  levels_.resize(static_cast<size_t>(config_.priority_levels));
}

namespace {

// Reads an unsigned integer request parameter (int64 or uint64, as clients send either).
core::Result<std::optional<uint64_t>> UnsignedParameter(const core::Parameters& params,
                                                        const std::string& key) {
  auto it = params.find(key);
  if (it == params.end()) return std::optional<uint64_t>();
  if (const auto* i = std::get_if<int64_t>(&it->second)) {
    if (*i < 0) {
      return Status::InvalidArgument("parameter '" + key + "' must not be negative, got " +
                                     std::to_string(*i));
    }
    return std::optional<uint64_t>(static_cast<uint64_t>(*i));
  }
  if (const auto* u = std::get_if<uint64_t>(&it->second)) return std::optional<uint64_t>(*u);
  return Status::InvalidArgument("parameter '" + key + "' must be an unsigned integer");
}

}  // namespace

Status BatchQueue::Enqueue(PendingRequest& item, TimePoint now) {
  ASSIGN_OR_RETURN(auto priority, UnsignedParameter(item.request.parameters, "priority"));
  ASSIGN_OR_RETURN(auto timeout, UnsignedParameter(item.request.parameters, "timeout"));
  item.priority = config_.default_priority;
  if (priority.has_value() && *priority != 0) {
    if (*priority > static_cast<uint64_t>(config_.priority_levels)) {
      return Status::InvalidArgument(
          "priority " + std::to_string(*priority) + " is outside 1.." +
          std::to_string(config_.priority_levels) + " (the priority levels of model '" +
          item.request.model_name + "')");
    }
    item.priority = static_cast<int64_t>(*priority);
  }
  const uint64_t timeout_us =
      timeout.has_value() && *timeout != 0 ? *timeout
                                           : static_cast<uint64_t>(config_.default_timeout_us);
  if (size_ >= config_.queue_capacity) {
    return Status::Unavailable("the queue of model '" + item.request.model_name +
                               "' is full (" + std::to_string(config_.queue_capacity) +
                               " requests waiting); retry later");
  }
  item.enqueued = now;
  item.deadline = TimePoint::max();
  if (timeout_us > 0) {
    const auto limit = std::chrono::microseconds(
        std::min<uint64_t>(timeout_us, uint64_t{1} << 40));  // ~12 days: no overflow
    item.deadline = now + limit;
  }
  item.sequence = next_sequence_++;
  levels_[static_cast<size_t>(item.priority - 1)].push_back(std::move(item));
  ++size_;
  return Status::Ok();
}

std::vector<PendingRequest> BatchQueue::TakeExpired(TimePoint now) {
  std::vector<PendingRequest> expired;
  for (auto& level : levels_) {
    for (auto it = level.begin(); it != level.end();) {
      if (it->deadline <= now) {
        expired.push_back(std::move(*it));
        it = level.erase(it);
        --size_;
      } else {
        ++it;
      }
    }
  }
  return expired;
}

std::vector<PendingRequest> BatchQueue::TakeAll() {
  std::vector<PendingRequest> all;
  for (auto& level : levels_) {
    for (auto& item : level) all.push_back(std::move(item));
    level.clear();
  }
  size_ = 0;
  return all;
}

bool BatchQueue::IsPreferred(int64_t rows) const {
  const auto& p = config_.preferred_batch_sizes;
  return !p.empty() && rows >= *std::max_element(p.begin(), p.end());
}

std::optional<TimePoint> BatchQueue::OldestArrival() const {
  std::optional<TimePoint> oldest;
  for (const auto& level : levels_) {
    if (!level.empty() && (!oldest || level.front().enqueued < *oldest)) {
      oldest = level.front().enqueued;
    }
  }
  return oldest;
}

std::optional<TimePoint> BatchQueue::EarliestDeadline() const {
  std::optional<TimePoint> earliest;
  for (const auto& level : levels_) {
    for (const auto& item : level) {
      if (item.deadline != TimePoint::max() && (!earliest || item.deadline < *earliest)) {
        earliest = item.deadline;
      }
    }
  }
  return earliest;
}

BatchQueue::Decision BatchQueue::Decide(TimePoint now) {
  Decision decision;
  if (size_ == 0) return decision;
  auto head_level = std::find_if(levels_.begin(), levels_.end(),
                                 [](const auto& level) { return !level.empty(); });
  const PendingRequest& head = head_level->front();
  const bool merging = config_.enabled && config_.max_batch_size > 0;
  if (!merging) {
    decision.batch.push_back(std::move(head_level->front()));
    head_level->pop_front();
    --size_;
    return decision;
  }
  // Candidates: same signature, in priority then arrival order, while they fit.
  std::vector<std::pair<size_t, size_t>> chosen;  // (level, index)
  int64_t rows = 0;
  for (size_t l = 0; l < levels_.size(); ++l) {
    for (size_t i = 0; i < levels_[l].size(); ++i) {
      const PendingRequest& item = levels_[l][i];
      if (item.signature != head.signature) continue;
      if (rows + item.batch > config_.max_batch_size) continue;
      rows += item.batch;
      chosen.emplace_back(l, i);
    }
  }
  const TimePoint due = head.enqueued + std::chrono::microseconds(config_.max_queue_delay_us);
  const bool full = rows >= config_.max_batch_size || IsPreferred(rows);
  if (!full && now < due) {
    decision.wake_at = due;
    if (auto deadline = EarliestDeadline(); deadline && *deadline < due) {
      decision.wake_at = deadline;
    }
    return decision;
  }
  // Take the chosen items out, preserving their order.
  for (auto it = chosen.rbegin(); it != chosen.rend(); ++it) {
    auto& level = levels_[it->first];
    decision.batch.push_back(std::move(level[it->second]));
    level.erase(level.begin() + static_cast<std::ptrdiff_t>(it->second));
  }
  std::reverse(decision.batch.begin(), decision.batch.end());
  size_ -= decision.batch.size();
  return decision;
}

}  // namespace slipway::scheduler
