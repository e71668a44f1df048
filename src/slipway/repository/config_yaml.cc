// Parses Slipway's config.yaml into a ModelConfig. Unknown keys are refused so that a typo does
// not silently fall back to a default.
#include <yaml-cpp/yaml.h>

#include <set>

#include "slipway/repository/model_repository.h"

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
                             "dynamic_batching", "default_model_filename"},
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
