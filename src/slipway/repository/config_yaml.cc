// Parses Slipway's config.yaml into a ModelConfig. Unknown keys are refused so that a typo does
// not silently fall back to a default.
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <set>
#include <sstream>

#include "slipway/repository/model_repository.h"
#include "slipway/repository/predict_config_yaml.h"

namespace slipway::repository {

using core::Result;
using core::Status;

namespace {

Status CheckKeys(const YAML::Node& node, const std::set<std::string>& allowed,
                 const std::string& where) {
  if (!node.IsMap()) return Status::InvalidArgument(where + " must be a mapping");
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    if (allowed.count(key) == 0) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Status::InvalidArgument(where + ": unknown key '" + key + "' (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::vector<core::TensorConfig>> ParseTensors(const YAML::Node& node,
                                                     const std::string& where) {
  if (!node.IsSequence()) return Status::InvalidArgument(where + " must be a list");
  std::vector<core::TensorConfig> out;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node t = node[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(CheckKeys(t, {"name", "datatype", "data_type", "dims"}, at));
    core::TensorConfig tc;
    if (!t["name"]) return Status::InvalidArgument(at + " has no name");
    tc.name = t["name"].as<std::string>();
    const YAML::Node dt = t["datatype"] ? t["datatype"] : t["data_type"];
    if (dt) {
      tc.type = core::ParseConfigDataType(dt.as<std::string>());
      if (tc.type == core::DataType::kInvalid) {
        return Status::InvalidArgument(at + " ('" + tc.name + "'): unknown datatype '" +
                                       dt.as<std::string>() + "'");
      }
    }
    if (t["dims"]) {
      tc.dims = t["dims"].as<std::vector<int64_t>>();
      tc.dims_set = true;
    }
    out.push_back(std::move(tc));
  }
  return out;
}

bool IsLabelName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  bool all_digits = true;
  for (char ch : s) {
    const bool ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' ||
                    ch == '.';
    if (!ok) return false;
    all_digits = all_digits && std::isdigit(static_cast<unsigned char>(ch));
  }
  return !all_digits;
}

Status ParseWarmup(const YAML::Node& node, const std::string& where, core::WarmupConfig* out) {
  if (node.IsScalar()) {
    out->enabled = node.as<bool>();
    return Status::Ok();
  }
  RETURN_IF_ERROR(CheckKeys(node, {"requests", "batch_size"}, where));
  if (node["requests"]) out->requests = node["requests"].as<int64_t>();
  if (node["batch_size"]) out->batch_size = node["batch_size"].as<int64_t>();
  if (out->requests < 0 || out->batch_size < 1) {
    return Status::InvalidArgument(where + ": requests must be >= 0 and batch_size >= 1");
  }
  out->enabled = out->requests > 0;
  return Status::Ok();
}

// `response_cache: {enable: true, ttl_seconds: 30}`; `response_cache: true` or an empty section
// turns it on with no expiry.
Status ParseResponseCache(const YAML::Node& node, const std::string& where,
                          core::ResponseCacheConfig* out) {
  out->enabled = true;
  if (node.IsNull()) return Status::Ok();
  bool flag = false;
  if (node.IsScalar()) {
    if (!YAML::convert<bool>::decode(node, flag)) {
      return Status::InvalidArgument(where + " must be true, false or a mapping, got '" +
                                     node.Scalar() + "'");
    }
    out->enabled = flag;
    return Status::Ok();
  }
  RETURN_IF_ERROR(CheckKeys(node, {"enable", "ttl_seconds"}, where));
  if (const YAML::Node e = node["enable"]) {
    if (!e.IsScalar() || !YAML::convert<bool>::decode(e, flag)) {
      return Status::InvalidArgument(where + ": enable must be true or false");
    }
    out->enabled = flag;
  }
  if (const YAML::Node t = node["ttl_seconds"]) {
    double ttl = 0;
    if (!t.IsScalar() || !YAML::convert<double>::decode(t, ttl) || !(ttl >= 0) ||
        ttl > 1e9) {
      return Status::InvalidArgument(where + ": ttl_seconds must be a number of seconds >= 0 "
                                     "(0: no expiry), got '" + (t.IsScalar() ? t.Scalar() : "") +
                                     "'");
    }
    out->ttl_seconds = ttl;
  }
  return Status::Ok();
}

Status ParseTarget(const YAML::Node& node, const std::string& where, std::string* out) {
  *out = node.as<std::string>();
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(out->data(), out->data() + out->size(), v);
  const bool number = ec == std::errc() && ptr == out->data() + out->size();
  if (number ? v < 1 : !IsLabelName(*out)) {
    return Status::InvalidArgument(where + ": '" + *out +
                                   "' is neither a version number (>= 1) nor a label name");
  }
  return Status::Ok();
}

Status ParseRollout(const YAML::Node& node, const std::string& where, core::RolloutConfig* out) {
  out->enabled = true;
  if (!node.IsNull()) {
    RETURN_IF_ERROR(CheckKeys(node, {"auto_start", "steps", "guards", "compare_fraction"}, where));
    if (node["auto_start"]) out->auto_start = node["auto_start"].as<bool>();
    if (node["compare_fraction"]) out->compare_fraction = node["compare_fraction"].as<double>();
    if (out->compare_fraction < 0 || out->compare_fraction > 1) {
      return Status::InvalidArgument(where + ": compare_fraction must be within 0..1");
    }
    if (const YAML::Node steps = node["steps"]) {
      if (!steps.IsSequence() || steps.size() == 0) {
        return Status::InvalidArgument(where + ": steps must be a non-empty list");
      }
      int64_t last = 0;
      for (size_t i = 0; i < steps.size(); ++i) {
        const std::string at = where + " steps[" + std::to_string(i) + "]";
        RETURN_IF_ERROR(CheckKeys(steps[i], {"weight", "requests", "seconds"}, at));
        if (!steps[i]["weight"]) return Status::InvalidArgument(at + " has no weight");
        core::RolloutStep step;
        step.weight_percent = steps[i]["weight"].as<int64_t>();
        if (steps[i]["requests"]) step.min_requests = steps[i]["requests"].as<int64_t>();
        if (steps[i]["seconds"]) step.min_seconds = steps[i]["seconds"].as<double>();
        if (step.weight_percent <= last || step.weight_percent > 100) {
          return Status::InvalidArgument(at + ": weights must rise within 1..100, got " +
                                         std::to_string(step.weight_percent) + " after " +
                                         std::to_string(last));
        }
        if (step.min_requests < 0 || step.min_seconds < 0) {
          return Status::InvalidArgument(at + ": requests and seconds must be >= 0");
        }
        last = step.weight_percent;
        out->steps.push_back(step);
      }
    }
    if (const YAML::Node g = node["guards"]) {
      RETURN_IF_ERROR(CheckKeys(g,
                                {"max_error_rate", "max_p99_ratio", "p99_slack_ms",
                                 "min_agreement", "min_comparisons", "min_accuracy",
                                 "min_requests"},
                                where + " guards"));
      auto& gd = out->guards;
      if (g["max_error_rate"]) gd.max_error_rate = g["max_error_rate"].as<double>();
      if (g["max_p99_ratio"]) gd.max_p99_ratio = g["max_p99_ratio"].as<double>();
      if (g["p99_slack_ms"]) gd.p99_slack_ms = g["p99_slack_ms"].as<double>();
      if (g["min_agreement"]) gd.min_agreement = g["min_agreement"].as<double>();
      if (g["min_comparisons"]) gd.min_comparisons = g["min_comparisons"].as<int64_t>();
      if (g["min_accuracy"]) gd.min_accuracy = g["min_accuracy"].as<double>();
      if (g["min_requests"]) gd.min_requests = g["min_requests"].as<int64_t>();
      const bool in_range = gd.max_error_rate >= 0 && gd.max_error_rate <= 1 &&
                            gd.max_p99_ratio > 0 && gd.p99_slack_ms >= 0 &&
                            gd.min_agreement >= 0 && gd.min_agreement <= 1 &&
                            gd.min_accuracy >= 0 && gd.min_accuracy <= 1 &&
                            gd.min_comparisons >= 0 && gd.min_requests >= 0;
      if (!in_range) {
        return Status::InvalidArgument(
            where + " guards: rates and agreement must be within 0..1, max_p99_ratio > 0, "
                    "slack and counts >= 0");
      }
    }
  }
  if (out->steps.empty()) out->steps = {{10, 100, 0}, {50, 100, 0}, {100, 100, 0}};
  return Status::Ok();
}

Status ParseRouting(const YAML::Node& root, const std::string& where, core::RoutingConfig* out) {
  if (const YAML::Node labels = root["labels"]) {
    if (!labels.IsMap()) return Status::InvalidArgument(where + " labels must be a mapping");
    for (const auto& kv : labels) {
      const std::string label = kv.first.as<std::string>();
      if (!IsLabelName(label)) {
        return Status::InvalidArgument(where + " labels: '" + label +
                                       "' is not a label name (letters, digits, _ - ., not all "
                                       "digits)");
      }
      const int64_t v = kv.second.as<int64_t>();
      if (v < 1) return Status::InvalidArgument(where + " labels: " + label + " needs a version >= 1");
      out->labels.emplace_back(label, v);
    }
  }
  if (const YAML::Node traffic = root["traffic"]) {
    RETURN_IF_ERROR(CheckKeys(traffic, {"split", "shadow"}, where + " traffic"));
    if (const YAML::Node split = traffic["split"]) {
      if (!split.IsMap()) return Status::InvalidArgument(where + " traffic split must be a mapping");
      int64_t total = 0;
      for (const auto& kv : split) {
        std::string target;
        RETURN_IF_ERROR(ParseTarget(kv.first, where + " traffic split", &target));
        const int64_t w = kv.second.as<int64_t>();
        if (w < 0) return Status::InvalidArgument(where + " traffic split: weights must be >= 0");
        total += w;
        out->traffic.split.emplace_back(target, w);
      }
      if (total <= 0) return Status::InvalidArgument(where + " traffic split: weights sum to 0");
    }
    if (const YAML::Node shadow = traffic["shadow"]) {
      RETURN_IF_ERROR(CheckKeys(shadow, {"target", "fraction"}, where + " traffic shadow"));
      if (!shadow["target"]) return Status::InvalidArgument(where + " traffic shadow needs a target");
      RETURN_IF_ERROR(ParseTarget(shadow["target"], where + " traffic shadow", &out->traffic.shadow_target));
      out->traffic.shadow_fraction = shadow["fraction"] ? shadow["fraction"].as<double>() : 1.0;
      if (out->traffic.shadow_fraction < 0 || out->traffic.shadow_fraction > 1) {
        return Status::InvalidArgument(where + " traffic shadow: fraction must be within 0..1");
      }
    }
  }
  if (root["rollout"]) RETURN_IF_ERROR(ParseRollout(root["rollout"], where + " rollout", &out->rollout));
  return Status::Ok();
}

Result<core::ModelConfig> ParseYamlNode(const YAML::Node& root, const std::string& model_name) {
  const std::string where = "model '" + model_name + "' config.yaml";
  if (root.IsNull()) {
    core::ModelConfig c;
    c.name = model_name;
    return c;
  }
  RETURN_IF_ERROR(CheckKeys(root,
                            {"name", "backend", "platform", "max_batch_size", "version_policy",
                             "instance_count", "instances", "inputs", "outputs",
                             "dynamic_batching", "default_model_filename", "warmup", "labels",
                             "traffic", "rollout", "validation", "monitoring", "response_cache",
                             "predict"},
                            where));
  core::ModelConfig c;
  c.name = root["name"] ? root["name"].as<std::string>() : model_name;
  if (c.name != model_name) {
    return Status::InvalidArgument(where + " names the model '" + c.name +
                                   "' but its folder is '" + model_name + "'");
  }
  if (root["backend"]) c.backend = root["backend"].as<std::string>();
  if (root["platform"]) c.platform = root["platform"].as<std::string>();
  if (root["max_batch_size"]) c.max_batch_size = root["max_batch_size"].as<int64_t>();
  if (root["instance_count"] && root["instances"]) {
    return Status::InvalidArgument(where + ": give either instance_count or instances, not both");
  }
  if (root["instance_count"]) c.instance_count = root["instance_count"].as<int64_t>();
  if (const YAML::Node inst = root["instances"]) {
    if (inst.IsMap()) {
      RETURN_IF_ERROR(CheckKeys(inst, {"min", "max"}, where + " instances"));
      c.instance_count = inst["min"] ? inst["min"].as<int64_t>() : 1;
      if (!inst["max"]) return Status::InvalidArgument(where + ": instances needs a max");
      c.max_instance_count = inst["max"].as<int64_t>();
      if (c.instance_count < 1 || c.max_instance_count < c.instance_count) {
        return Status::InvalidArgument(where + ": instances needs 1 <= min <= max, got min " +
                                       std::to_string(c.instance_count) + ", max " +
                                       std::to_string(c.max_instance_count));
      }
    } else {
      c.instance_count = inst.as<int64_t>();
    }
  }
  if (root["default_model_filename"]) {
    c.default_model_filename = root["default_model_filename"].as<std::string>();
  }
  if (root["inputs"]) {
    ASSIGN_OR_RETURN(c.inputs, ParseTensors(root["inputs"], where + " inputs"));
  }
  if (root["outputs"]) {
    ASSIGN_OR_RETURN(c.outputs, ParseTensors(root["outputs"], where + " outputs"));
  }
  if (const YAML::Node vp = root["version_policy"]) {
    RETURN_IF_ERROR(CheckKeys(vp, {"latest", "all", "specific"}, where + " version_policy"));
    if (vp.size() != 1) {
      return Status::InvalidArgument(where + " version_policy must have exactly one of latest, all, specific");
    }
    if (vp["latest"]) {
      c.version_policy.kind = core::VersionPolicy::Kind::kLatest;
      c.version_policy.latest_count =
          vp["latest"]["num_versions"] ? vp["latest"]["num_versions"].as<int64_t>() : 1;
    } else if (vp["all"]) {
      c.version_policy.kind = core::VersionPolicy::Kind::kAll;
    } else {
      c.version_policy.kind = core::VersionPolicy::Kind::kSpecific;
      c.version_policy.specific = vp["specific"]["versions"].as<std::vector<int64_t>>();
    }
  }
  if (root["warmup"]) RETURN_IF_ERROR(ParseWarmup(root["warmup"], where + " warmup", &c.warmup));
  RETURN_IF_ERROR(ParseRouting(root, where, &c.routing));
  if (const YAML::Node mon = root["monitoring"]) {
    RETURN_IF_ERROR(CheckKeys(mon, {"feedback", "drift", "retrain"}, where + " monitoring"));
    if (const YAML::Node d = mon["drift"]) {
      auto& dc = c.monitoring.drift;
      dc.enabled = true;
      if (!d.IsNull()) {
        RETURN_IF_ERROR(CheckKeys(d,
                                  {"reference", "window", "p_value", "psi", "categorical",
                                   "max_features_per_tensor", "outputs", "sample",
                                   "max_rows_per_second"},
                                  where + " monitoring drift"));
        if (const YAML::Node r = d["reference"]) {
          RETURN_IF_ERROR(CheckKeys(r, {"file", "first_rows"}, where + " monitoring drift reference"));
          if (r["file"]) dc.reference_file = r["file"].as<std::string>();
          if (r["first_rows"]) dc.reference_rows = r["first_rows"].as<int64_t>();
        }
        if (const YAML::Node w = d["window"]) {
          RETURN_IF_ERROR(CheckKeys(w, {"rows", "seconds"}, where + " monitoring drift window"));
          if (w["rows"]) dc.window_rows = w["rows"].as<int64_t>();
          if (w["seconds"]) dc.window_seconds = w["seconds"].as<double>();
        }
        if (d["p_value"]) dc.p_value = d["p_value"].as<double>();
        if (d["psi"]) dc.psi = d["psi"].as<double>();
        if (d["categorical"]) dc.categorical = d["categorical"].as<std::vector<std::string>>();
        if (d["max_features_per_tensor"]) {
          dc.max_features_per_tensor = d["max_features_per_tensor"].as<int64_t>();
        }
        if (d["outputs"]) dc.outputs = d["outputs"].as<bool>();
        if (d["sample"]) dc.sample = d["sample"].as<double>();
        if (d["max_rows_per_second"]) {
          dc.max_rows_per_second = d["max_rows_per_second"].as<double>();
        }
      }
      if (dc.reference_file.empty() == (dc.reference_rows <= 0)) {
        return Status::InvalidArgument(where + " monitoring drift: give exactly one reference, "
                                       "{file: ...} or {first_rows: N}");
      }
      if (dc.reference_file.find("..") != std::string::npos ||
          (!dc.reference_file.empty() && dc.reference_file[0] == '/')) {
        return Status::InvalidArgument(where + " monitoring drift: the reference file must be "
                                       "inside the model's folder");
      }
      // Each setting is checked on its own, so the refusal names the one at fault.
      const auto bad = [&](const std::string& key, const std::string& rule, double got) {
        std::ostringstream message;
        message << where << " monitoring drift: " << key << " must be " << rule << ", got " << got;
        return Status::InvalidArgument(message.str());
      };
      if (dc.window_rows < 10) return bad("window rows", "at least 10", static_cast<double>(dc.window_rows));
      if (!(dc.window_seconds >= 0)) return bad("window seconds", "0 or more", dc.window_seconds);
      if (!(dc.p_value > 0 && dc.p_value < 1)) return bad("p_value", "between 0 and 1", dc.p_value);
      if (!(dc.psi > 0)) return bad("psi", "above 0", dc.psi);
      if (dc.max_features_per_tensor < 1) {
        return bad("max_features_per_tensor", "at least 1",
                   static_cast<double>(dc.max_features_per_tensor));
      }
      if (!(dc.sample > 0 && dc.sample <= 1)) return bad("sample", "above 0 and at most 1", dc.sample);
      if (!(dc.max_rows_per_second == 0 ||
            (dc.max_rows_per_second >= 1 && dc.max_rows_per_second <= 1e9))) {
        return bad("max_rows_per_second", "0 (no limit) or from 1 to 1e9", dc.max_rows_per_second);
      }
    }
    if (const YAML::Node rt = mon["retrain"]) {
      RETURN_IF_ERROR(CheckKeys(rt, {"webhook", "min_interval_seconds"}, where + " monitoring retrain"));
      if (rt["webhook"]) c.monitoring.retrain.webhook = rt["webhook"].as<std::string>();
      if (rt["min_interval_seconds"]) {
        c.monitoring.retrain.min_interval_seconds = rt["min_interval_seconds"].as<double>();
      }
    }
    if (const YAML::Node fb = mon["feedback"]) {
      auto& f = c.monitoring.feedback;
      f.enabled = true;
      if (!fb.IsNull()) {
        RETURN_IF_ERROR(CheckKeys(fb, {"output", "window", "min_accuracy"},
                                  where + " monitoring feedback"));
        if (fb["output"]) f.output = fb["output"].as<std::string>();
        if (fb["window"]) f.window = fb["window"].as<int64_t>();
        if (fb["min_accuracy"]) f.min_accuracy = fb["min_accuracy"].as<double>();
      }
      if (f.window < 1 || f.min_accuracy < 0 || f.min_accuracy > 1) {
        return Status::InvalidArgument(where + " monitoring feedback: window must be >= 1 and "
                                       "min_accuracy within 0..1");
      }
    }
  }
  if (const YAML::Node v = root["validation"]) {
    RETURN_IF_ERROR(CheckKeys(v, {"file", "output", "min_accuracy", "max_divergence"},
                              where + " validation"));
    if (!v["file"]) return Status::InvalidArgument(where + " validation needs a file");
    c.validation.file = v["file"].as<std::string>();
    if (c.validation.file.empty() || c.validation.file[0] == '/' ||
        c.validation.file.find("..") != std::string::npos) {
      return Status::InvalidArgument(where + " validation file must be a path inside the "
                                     "model's folder, got '" + c.validation.file + "'");
    }
    if (v["output"]) c.validation.output = v["output"].as<std::string>();
    if (v["min_accuracy"]) c.validation.min_accuracy = v["min_accuracy"].as<double>();
    if (v["max_divergence"]) c.validation.max_divergence = v["max_divergence"].as<double>();
    if (c.validation.min_accuracy < 0 || c.validation.min_accuracy > 1 ||
        c.validation.max_divergence < 0 || c.validation.max_divergence > 1) {
      return Status::InvalidArgument(where + " validation: min_accuracy and max_divergence "
                                     "must be within 0..1");
    }
  }
  if (const YAML::Node pr = root["predict"]) {
    RETURN_IF_ERROR(ParsePredictConfig(pr, where + " predict", &c.predict));
  }
  if (const YAML::Node rc = root["response_cache"]) {
    RETURN_IF_ERROR(ParseResponseCache(rc, where + " response_cache", &c.response_cache));
  }
  if (const YAML::Node db = root["dynamic_batching"]) {
    c.dynamic_batching.enabled = true;
    if (db.IsNull()) return c;  // `dynamic_batching:` alone turns batching on with defaults
    RETURN_IF_ERROR(CheckKeys(db,
                              {"max_queue_delay_microseconds", "preferred_batch_size",
                               "max_queue_size", "default_timeout_microseconds",
                               "priority_levels", "default_priority_level", "preserve_ordering"},
                              where + " dynamic_batching"));
    c.dynamic_batching.enabled = true;
    auto& d = c.dynamic_batching;
    if (db["max_queue_size"]) d.max_queue_size = db["max_queue_size"].as<int64_t>();
    if (db["default_timeout_microseconds"]) {
      d.default_timeout_us = db["default_timeout_microseconds"].as<int64_t>();
    }
    if (db["priority_levels"]) d.priority_levels = db["priority_levels"].as<int64_t>();
    if (db["default_priority_level"]) {
      d.default_priority_level = db["default_priority_level"].as<int64_t>();
    }
    if (db["preserve_ordering"]) d.preserve_ordering = db["preserve_ordering"].as<bool>();
    if (db["max_queue_delay_microseconds"]) {
      c.dynamic_batching.max_queue_delay_us = db["max_queue_delay_microseconds"].as<int64_t>();
    }
    if (db["preferred_batch_size"]) {
      c.dynamic_batching.preferred_batch_sizes =
          db["preferred_batch_size"].as<std::vector<int64_t>>();
    }
  }
  return c;
}

}  // namespace

Result<core::ModelConfig> ParseConfigYaml(const std::string& text, const std::string& model_name) {
  try {
    return ParseYamlNode(YAML::Load(text), model_name);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("model '" + model_name + "' config.yaml: " + e.what());
  }
}

}  // namespace slipway::repository
