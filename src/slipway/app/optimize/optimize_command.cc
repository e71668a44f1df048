#include "slipway/app/optimize/optimize_command.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "slipway/app/optimize/candidate_version.h"
#include "slipway/app/optimize/dynamic_quantizer.h"
#include "slipway/app/optimize/float16_converter.h"
#include "slipway/app/optimize/graph_editor.h"
#include "slipway/app/optimize/model_comparison.h"
#include "slipway/app/optimize/model_runner.h"
#include "slipway/app/optimize/onnx_model_file.h"
#include "slipway/app/optimize/optimize_report.h"
#include "slipway/app/optimize/sample_set.h"
#include "slipway/app/optimize/static_quantizer.h"
#include "slipway/backends/onnxruntime/graph_optimizer.h"

namespace slipway::app::optimize {

namespace fs = std::filesystem;
using core::Result;
using core::Status;

namespace {

constexpr const char* kCandidateReportJson = "optimize_report.json";
constexpr const char* kCandidateReportMd = "optimize_report.md";

Status CheckFlags(const OptimizeFlags& f) {
  if (f.output.empty() && f.as_candidate.empty()) {
    return Status::InvalidArgument("give -o OUT.onnx, --as-candidate REPO/MODEL, or both");
  }
  if (f.quantize == "none" && !f.float16 && f.graph_level.empty()) {
    return Status::InvalidArgument("nothing to do: give --quantize dynamic|static, --float16 or --graph-level");
  }
  if (f.float16 && f.quantize != "none") {
    return Status::InvalidArgument("--float16 and --quantize are alternatives; choose one");
  }
  if (f.quantize == "static" && f.calibration.empty()) {
    return Status::InvalidArgument("--quantize static needs --calibration FILE (JSON lines or .npy)");
  }
  if (f.include_conv && f.quantize != "dynamic") {
    return Status::InvalidArgument("--include-conv applies to --quantize dynamic (static always includes Conv)");
  }
  if ((f.per_channel || f.reduce_range) && f.quantize == "none") {
    return Status::InvalidArgument("--per-channel and --reduce-range apply to --quantize");
  }
  if (f.external_data_threshold != 0 && !f.external_data) {
    return Status::InvalidArgument("--external-data-threshold applies to --external-data");
  }
  if (f.percentile <= 50 || f.percentile > 100) {
    return Status::InvalidArgument("--percentile must be in (50, 100]");
  }
  for (int64_t b : f.batch_sizes) {
    if (b < 1 || b > 4096) return Status::InvalidArgument("--batch-sizes must be between 1 and 4096");
  }
  return Status::Ok();
}

ModelRunner::Options RunnerOptions(int threads) {
  ModelRunner::Options o;
  o.intra_op_threads = threads;
  return o;
}

// A temporary folder removed with everything in it when this goes out of scope.
class ScratchDir {
 public:
  static Result<ScratchDir> Create() {
    std::string pattern = (fs::temp_directory_path() / "slipway-optimize-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return Status::Internal("cannot create a temporary folder in " + fs::temp_directory_path().string());
    }
    return ScratchDir(pattern);
  }
  ScratchDir(ScratchDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ScratchDir(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

std::string DefaultReportPath(const std::string& output, const std::string& suffix) {
  fs::path p(output);
  if (p.extension() == ".onnx") p.replace_extension();
  return p.string() + suffix;
}

// Writes `bytes` to `path` through a temporary file beside it and a rename.
Status WriteAtomically(const std::string& path, const std::string& bytes) {
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  Status st = WriteFileSynced(tmp, bytes);
  if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status::Internal("cannot move the result to '" + path + "'");
  }
  if (!st.ok()) fs::remove(tmp, ec);
  return st;
}

std::string MethodText(const OptimizeFlags& f, size_t calibration_examples) {
  const std::string granularity = f.per_channel ? "per-channel" : "per-tensor";
  if (f.quantize == "dynamic") {
    return fmt::format("dynamic int8 ({} weights; MatMul/Gemm{}{})", granularity,
                       f.include_conv ? "/Conv" : "", f.reduce_range ? "; 7-bit range" : "");
  }
  if (f.quantize == "static") {
    const std::string calib = f.calibration_method == "percentile"
                                  ? fmt::format("percentile {:g}", f.percentile)
                                  : std::string("min-max");
    return fmt::format("static int8 QDQ ({} weights; {} calibration on {} examples{})", granularity, calib,
                       calibration_examples, f.reduce_range ? "; 7-bit range" : "");
  }
  if (f.float16) return "float16 weights (compute stays float32)";
  return "graph optimization";
}

std::vector<std::pair<std::string, std::string>> Settings(const OptimizeFlags& f) {
  std::vector<std::pair<std::string, std::string>> s;
  s.emplace_back("quantize", f.quantize);
  s.emplace_back("float16", f.float16 ? "true" : "false");
  s.emplace_back("graph_level", f.graph_level.empty() ? "none" : f.graph_level);
  s.emplace_back("per_channel", f.per_channel ? "true" : "false");
  s.emplace_back("include_conv", f.include_conv ? "true" : "false");
  s.emplace_back("reduce_range", f.reduce_range ? "true" : "false");
  if (!f.calibration.empty()) {
    s.emplace_back("calibration", f.calibration);
    s.emplace_back("calibration_method", f.calibration_method);
    if (f.calibration_method == "percentile") s.emplace_back("percentile", fmt::format("{:g}", f.percentile));
  }
  std::string ex;
  for (const auto& e : f.exclude) ex += (ex.empty() ? "" : ",") + e;
  if (!ex.empty()) s.emplace_back("exclude", ex);
  ex.clear();
  for (const auto& e : f.exclude_op_types) ex += (ex.empty() ? "" : ",") + e;
  if (!ex.empty()) s.emplace_back("exclude_op_types", ex);
  return s;
}

// A model as the files that hold it: the model file and, with external data, its weights file.
struct ModelFiles {
  std::string model_bytes;
  std::string data_name;  // empty: weights inline
  std::string data_bytes;
};

std::string DataFileName(const std::string& model_path) {
  return fs::path(model_path).filename().string() + ".data";
}

Result<ModelFiles> Materialize(const onnx::ModelProto& model, const std::string& data_name, int64_t threshold) {
  ModelFiles files;
  files.data_name = data_name;
  if (data_name.empty()) {
    ASSIGN_OR_RETURN(files.model_bytes, SerializeOnnxModel(model));
    return files;
  }
  onnx::ModelProto split = model;
  files.data_bytes = MoveWeightsToExternalData(&split, data_name, threshold);
  ASSIGN_OR_RETURN(files.model_bytes, SerializeOnnxModel(split));
  return files;
}

// Writes the files into `dir` (created) and returns the model file's path there.
Result<std::string> WriteScratch(const std::string& dir, const ModelFiles& files) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string model_path = (fs::path(dir) / "optimized.onnx").string();
  if (!files.data_name.empty()) RETURN_IF_ERROR(WriteFileSynced((fs::path(dir) / files.data_name).string(), files.data_bytes));
  RETURN_IF_ERROR(WriteFileSynced(model_path, files.model_bytes));
  return model_path;
}

struct Outcome {
  OptimizeReport report;
  ModelFiles output;     // for -o
  ModelFiles candidate;  // for --as-candidate
  bool below_floor = false;
};

Result<Outcome> Optimize(const OptimizeFlags& f) {
  Outcome out;
  OptimizeReport& report = out.report;
  report.input_path = f.model;
  report.settings = Settings(f);
  report.intra_op_threads = f.threads;
  ASSIGN_OR_RETURN(std::string input_bytes, ReadFileBytes(f.model));
  ASSIGN_OR_RETURN(onnx::ModelProto model, ParseOnnxModel(input_bytes, f.model));
  report.file_bytes_before = static_cast<int64_t>(input_bytes.size());
  report.weight_bytes_before = WeightBytes(model);
  report.data_file_bytes_before = ExternalDataFileBytes(model, f.model);
  {
    const fs::path dir = fs::path(f.model).parent_path();
    RETURN_IF_ERROR(InlineExternalData(&model, dir.empty() ? "." : dir.string(), f.model));
  }
  RETURN_IF_ERROR(CheckSupportedModel(model, f.model));
  report.opset = DefaultOpset(model);

  std::optional<CandidateTarget> candidate;
  if (!f.as_candidate.empty()) {
    ASSIGN_OR_RETURN(CandidateTarget t, ResolveCandidate(f.as_candidate));
    candidate = std::move(t);
  }
  ASSIGN_OR_RETURN(auto original, ModelRunner::Create(f.model, RunnerOptions(f.threads)));
  const core::ModelConfig& config = original->config();

  // Examples: calibration, then evaluation (given, else the calibration set, else generated).
  std::optional<SampleSet> calibration;
  if (!f.calibration.empty()) {
    ASSIGN_OR_RETURN(SampleSet s, ReadSampleSet(f.calibration, config, "calibration file"));
    calibration = std::move(s);
  }
  SampleSet eval;
  if (!f.eval.empty()) {
    ASSIGN_OR_RETURN(eval, ReadSampleSet(f.eval, config, "evaluation set"));
  } else if (calibration) {
    eval = *calibration;
    report.notes.push_back("no --eval set: agreement is measured on the calibration set, which the "
                           "quantization has seen");
  } else {
    eval = GenerateSamples(config, f.eval_generated, 7);
    report.notes.push_back("no --eval set: agreement is measured on generated random inputs; pass "
                           "--eval FILE with real examples for a meaningful figure");
  }
  const std::string judged = f.eval_output.empty() ? DefaultJudgedOutput(config) : f.eval_output;
  if (config.FindOutput(judged) == nullptr) {
    return Status::InvalidArgument("--eval-output '" + judged + "' is not an output of the model");
  }

  ASSIGN_OR_RETURN(ScratchDir scratch, ScratchDir::Create());
  if (!f.graph_level.empty()) {
    ASSIGN_OR_RETURN(auto level, backends::onnxruntime::ParseOptimizationLevel(f.graph_level));
    const std::string optimized = scratch.File("graph.onnx");
    RETURN_IF_ERROR(backends::onnxruntime::SaveOptimizedGraph(f.model, optimized, level));
    ASSIGN_OR_RETURN(model, ReadOnnxModel(optimized));
    report.graph_level = f.graph_level;
    if (f.graph_level != "basic" && (f.quantize != "none" || f.float16)) {
      report.notes.push_back("graph level '" + f.graph_level + "' fuses operators into ONNX Runtime's own "
                             "(com.microsoft) ones, which are not quantized; 'basic' keeps standard operators");
    }
    if (f.graph_level == "layout" || f.graph_level == "all") {
      report.notes.push_back("graph level '" + f.graph_level + "' saves layouts for this CPU's instruction "
                             "set: serve the result on the same kind of machine");
    }
  }

  RewriteOptions ropts;
  ropts.per_channel = f.per_channel;
  ropts.include_conv = f.include_conv;
  ropts.reduce_range = f.reduce_range;
  ropts.exclude.insert(f.exclude.begin(), f.exclude.end());
  ropts.exclude_op_types.insert(f.exclude_op_types.begin(), f.exclude_op_types.end());
  if (f.quantize != "none" || f.float16) ConstantsToInitializers(model.mutable_graph());
  if (f.quantize == "dynamic") {
    ASSIGN_OR_RETURN(report.rewrite, QuantizeDynamic(&model, ropts));
  } else if (f.quantize == "static") {
    ASSIGN_OR_RETURN(StaticQuantizationPlan plan, PlanStaticQuantization(model, ropts));
    CalibrationOptions copts;
    copts.method = f.calibration_method == "percentile" ? CalibrationMethod::kPercentile
                                                          : CalibrationMethod::kMinMax;
    copts.percentile = f.percentile;
    copts.intra_op_threads = f.threads;
    copts.scratch_path = scratch.File("calibration.onnx");
    ASSIGN_OR_RETURN(auto ranges, Calibrate(model, plan.calibration_tensors, *calibration, copts));
    ASSIGN_OR_RETURN(report.rewrite, ApplyStaticQuantization(&model, plan, ranges, ropts));
  } else if (f.float16) {
    ASSIGN_OR_RETURN(report.rewrite, ConvertWeightsToFloat16(&model, ropts));
  }
  report.method = MethodText(f, calibration ? calibration->samples.size() : 0);
  auto* meta = model.add_metadata_props();
  meta->set_key("slipway.optimize");
  meta->set_value(report.method + (report.graph_level.empty() ? "" : "; graph " + report.graph_level));

  report.weight_bytes_after = WeightBytes(model);
  const std::string output_data = !f.external_data ? std::string()
                                  : !f.output.empty() ? DataFileName(f.output)
                                  : candidate ? DataFileName(candidate->model_filename)
                                              : std::string();
  ASSIGN_OR_RETURN(out.output, Materialize(model, output_data, f.external_data_threshold));
  report.file_bytes_after = static_cast<int64_t>(out.output.model_bytes.size());
  report.data_file = out.output.data_name;
  report.data_file_bytes_after = static_cast<int64_t>(out.output.data_bytes.size());

  // The result must load in ONNX Runtime (and, for a candidate, with the model's config), as the
  // very files that will be written.
  ASSIGN_OR_RETURN(const std::string result_path, WriteScratch(scratch.File("output"), out.output));
  auto optimized = ModelRunner::Create(result_path, RunnerOptions(f.threads));
  if (!optimized.ok()) {
    return Status::Internal("the optimized model does not load in ONNX Runtime, so nothing was written: " +
                            optimized.status().message());
  }
  if (candidate) {
    const std::string candidate_data = f.external_data ? DataFileName(candidate->model_filename) : std::string();
    std::string candidate_path = result_path;
    if (candidate_data == out.output.data_name) {
      out.candidate = out.output;
    } else {
      ASSIGN_OR_RETURN(out.candidate, Materialize(model, candidate_data, f.external_data_threshold));
      ASSIGN_OR_RETURN(candidate_path, WriteScratch(scratch.File("candidate"), out.candidate));
    }
    ModelRunner::Options with_config{.intra_op_threads = 1, .max_batch_size = {}, .config = candidate->config};
    auto checked = ModelRunner::Create(candidate_path, with_config);
    if (!checked.ok()) {
      return Status::InvalidArgument("the optimized model does not fit model '" + candidate->model +
                                     "''s config, so no version was written: " + checked.status().message());
    }
  }

  ASSIGN_OR_RETURN(Agreement agreement, CompareModels(*original, *optimized.value(), eval, judged));
  report.accuracy = agreement;
  if (!f.no_bench) {
    ASSIGN_OR_RETURN(report.latency,
                     CompareLatency(*original, *optimized.value(), eval, f.batch_sizes, f.bench_seconds));
    if (!original->batching()) report.notes.push_back("the model does not batch: measured at batch 1 only");
    for (const auto& p : report.latency) {
      if (p.speedup() < 0.95) {
        report.notes.push_back(fmt::format(
            "at batch {} the optimized model is slower ({:.2f}x): on a model this small the work that "
            "quantization adds (quantizing activations, converting back to float) outweighs the cheaper "
            "int8 arithmetic, or ONNX Runtime could not fuse every quantized group",
            p.batch, p.speedup()));
        break;
      }
    }
  }
  if (f.min_agreement > 0 && agreement.top1_agreement() < f.min_agreement) out.below_floor = true;
  if (candidate) {
    report.candidate_model = candidate->model;
    report.candidate_version = candidate->next_version;
  }
  return out;
}

}  // namespace

void RegisterOptimizeFlags(CLI::App* app, OptimizeFlags* f) {
  app->add_option("model", f->model, "The ONNX model to optimize")->required()->check(CLI::ExistingFile);
  app->add_option("-o,--output", f->output, "Where to write the optimized model");
  app->add_option("--as-candidate", f->as_candidate,
                  "REPOSITORY/MODEL: also write the result and its report as the model's next version, "
                  "for the server's rollout plan to canary");
  app->add_option("--graph-level", f->graph_level,
                  "Run ONNX Runtime's graph optimizations first and save their result: basic (portable), "
                  "extended, layout or all (tied to this CPU)")
      ->check(CLI::IsMember({"disabled", "basic", "extended", "layout", "all"}));
  app->add_option("--quantize", f->quantize,
                  "none; dynamic (int8 MatMul/Gemm weights, activations quantized at run time); static "
                  "(int8 weights and activations as QDQ, needs --calibration)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "dynamic", "static"}));
  app->add_flag("--float16", f->float16, "Store float weights as float16 (compute stays float32)");
  app->add_flag("--per-channel", f->per_channel, "One weight scale per output channel (opset 13+)");
  app->add_flag("--include-conv", f->include_conv, "Dynamic quantization: store Conv weights as int8 too");
  app->add_flag("--reduce-range", f->reduce_range,
                "7-bit weights, for CPUs without VNNI whose u8s8 kernels can saturate");
  app->add_option("--calibration", f->calibration,
                  "Calibration examples: JSON lines {\"inputs\": {NAME: [...]}} or a .npy array (one input)")
      ->check(CLI::ExistingFile);
  app->add_option("--calibration-method", f->calibration_method, "minmax or percentile")
      ->capture_default_str()
      ->check(CLI::IsMember({"minmax", "percentile"}));
  app->add_option("--percentile", f->percentile, "Percentile kept by --calibration-method percentile")
      ->capture_default_str();
  app->add_option("--exclude", f->exclude, "A node (by name or output) or tensor left in float; repeatable");
  app->add_option("--exclude-op-type", f->exclude_op_types, "An operator type left in float; repeatable");
  app->add_option("--eval", f->eval,
                  "Evaluation examples (JSON lines, optionally with \"label\", or .npy); default: the "
                  "calibration set, else generated rows")
      ->check(CLI::ExistingFile);
  app->add_option("--eval-output", f->eval_output, "The output judged by top-1 (default: the class scores)");
  app->add_option("--eval-rows", f->eval_generated, "Rows generated when no examples are given")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app->add_option("--min-agreement", f->min_agreement,
                  "Refuse to write a model whose top-1 agreement with the original is below this (0-1)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_flag("--external-data", f->external_data,
                "Keep the weights in a file beside the model (OUT.onnx.data), as ONNX's external data; "
                "needed past 2 GiB, and lets the weights be stored and mapped apart from the graph");
  app->add_option("--external-data-threshold", f->external_data_threshold,
                  "With --external-data: initializers under this many bytes stay in the model file")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app->add_option("--report-json", f->report_json, "Report path (default: OUT.report.json)");
  app->add_option("--report-md", f->report_md, "Report path (default: OUT.report.md)");
  app->add_option("--threads", f->threads, "ONNX Runtime intra-op threads while measuring")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app->add_option("--bench-seconds", f->bench_seconds, "Measuring time per batch size (both models)")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 600.0));
  app->add_option("--batch-sizes", f->batch_sizes, "Batch sizes measured")->delimiter(',')->capture_default_str();
  app->add_flag("--no-bench", f->no_bench, "Skip the latency measurement");
  app->callback([f] {
    Status st = CheckFlags(*f);
    if (!st.ok()) throw CLI::ValidationError(st.message());
  });
}

int RunOptimizeCommand(const OptimizeFlags& f) {
  auto outcome = Optimize(f);
  if (!outcome.ok()) {
    std::cerr << "slipway optimize: " << outcome.status().message() << "\n";
    return kExitFailed;
  }
  Outcome& o = outcome.value();
  OptimizeReport& report = o.report;
  if (o.below_floor) {
    report.notes.push_back(fmt::format("top-1 agreement {:.4f} is below --min-agreement {:.4f}: nothing was written",
                                       report.accuracy->top1_agreement(), f.min_agreement));
    report.candidate_model.clear();
    std::cout << ReportText(report);
    std::cerr << "slipway optimize: top-1 agreement " << fmt::format("{:.4f}", report.accuracy->top1_agreement())
              << " is below --min-agreement " << f.min_agreement << "; nothing was written\n";
    return kExitFailed;
  }
  if (!f.output.empty()) report.output_path = f.output;
  if (!f.as_candidate.empty()) {
    auto target = ResolveCandidate(f.as_candidate);
    if (!target.ok()) {
      std::cerr << "slipway optimize: " << target.status().message() << "\n";
      return kExitFailed;
    }
    OptimizeReport version_report = report;
    version_report.output_path = (fs::path(target->repository) / target->model /
                                  std::to_string(target->next_version) / target->model_filename).string();
    version_report.data_file = o.candidate.data_name;
    version_report.data_file_bytes_after = static_cast<int64_t>(o.candidate.data_bytes.size());
    std::vector<std::pair<std::string, std::string>> files{{kCandidateReportJson, ReportJson(version_report)},
                                                           {kCandidateReportMd, ReportMarkdown(version_report)}};
    if (!o.candidate.data_name.empty()) files.emplace_back(o.candidate.data_name, o.candidate.data_bytes);
    auto version = WriteCandidate(target.value(), o.candidate.model_bytes, files);
    if (!version.ok()) {
      std::cerr << "slipway optimize: " << version.status().message() << "\n";
      return kExitFailed;
    }
    report.candidate_version = version.value();
    report.notes.push_back(fmt::format("wrote version {} of model '{}' in {} with its report ({}); the server "
                                       "picks it up at its next repository scan or load",
                                       version.value(), target->model, target->repository, kCandidateReportJson));
  }
  if (!f.output.empty()) {
    // The weights file first: the model file that refers to it appears last.
    Status st = Status::Ok();
    if (!o.output.data_name.empty()) {
      st = WriteAtomically((fs::path(f.output).parent_path() / o.output.data_name).string(), o.output.data_bytes);
    }
    if (st.ok()) st = WriteAtomically(f.output, o.output.model_bytes);
    const std::string json_path = f.report_json.empty() ? DefaultReportPath(f.output, ".report.json") : f.report_json;
    const std::string md_path = f.report_md.empty() ? DefaultReportPath(f.output, ".report.md") : f.report_md;
    if (st.ok()) st = WriteAtomically(json_path, ReportJson(report));
    if (st.ok()) st = WriteAtomically(md_path, ReportMarkdown(report));
    if (!st.ok()) {
      std::cerr << "slipway optimize: " << st.message() << "\n";
      return kExitFailed;
    }
  } else {
    if (!f.report_json.empty()) (void)WriteAtomically(f.report_json, ReportJson(report));
    if (!f.report_md.empty()) (void)WriteAtomically(f.report_md, ReportMarkdown(report));
  }
  std::cout << ReportText(report);
  return kExitOk;
}

}  // namespace slipway::app::optimize
