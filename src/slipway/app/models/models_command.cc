#include "slipway/app/models/models_command.h"

#include <httplib.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "slipway/app/models/admin_reply_format.h"
#include "slipway/app/models/admin_request.h"

namespace slipway::app::models {
namespace {

using core::Result;
using core::Status;

// A CLI11 check built from one of admin_request.h's parsers.
template <typename Parse>
CLI::Validator Checked(Parse parse) {
  return CLI::Validator(
      [parse](std::string& text) {
        auto parsed = parse(text);
        return parsed.ok() ? std::string() : parsed.status().message();
      },
      "");
}

// A CLI11 check that the text is a whole number >= 1 (versions, --limit).
CLI::Validator WholeNumber() {
  return CLI::Validator(
      [](std::string& text) {
        int64_t v = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        const bool ok = !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
        return ok && v >= 1 ? std::string() : "expected a whole number >= 1, got '" + text + "'";
      },
      "");
}

// A CLI11 check that the text is a number of seconds > 0 (--timeout).
CLI::Validator Seconds() {
  return CLI::Validator(
      [](std::string& text) {
        double v = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        const bool ok = !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
        return ok && v > 0 && v < 1e9 ? std::string()
                                      : "expected a number of seconds > 0, got '" + text + "'";
      },
      "");
}

// Adds a verb that records itself in flags->verb once parsed.
CLI::App* AddVerb(CLI::App* models, ModelsFlags* f, ModelsVerb verb, const std::string& help) {
  CLI::App* sub = models->add_subcommand(VerbName(verb), help);
  sub->callback([f, verb] { f->verb = verb; });  // runs before the models callback
  return sub;
}

void AddModel(CLI::App* sub, ModelsFlags* f) {
  sub->add_option("MODEL", f->model, "Model name")->required();
}

Result<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::Internal("cannot read " + path);
  return text.str();
}

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (!text.empty() && text.back() != '\n') std::fputc('\n', stdout);
}

// The message for a request that got no HTTP answer at all.
std::string TransportError(httplib::Error error, const AdminRequest& request,
                           const std::string& where, double timeout_seconds) {
  const std::string what = request.method + " " + request.path;
  const std::string detail = httplib::to_string(error);
  switch (error) {
    case httplib::Error::Read: {
      char seconds[32];
      std::snprintf(seconds, sizeof(seconds), "%g", timeout_seconds);
      return "no answer from the server at " + where + " to " + what + " within " + seconds +
             " s, or the connection closed early (" + detail + ")";
    }
    case httplib::Error::Write:
      return "could not send " + what + " to the server at " + where + " (" + detail + ")";
    default:
      return "cannot connect to the server at " + where + " (" + detail + ")";
  }
}

}  // namespace

const char* VerbName(ModelsVerb verb) {
  switch (verb) {
    case ModelsVerb::kNone:
      return "";
    case ModelsVerb::kList:
      return "list";
    case ModelsVerb::kLoad:
      return "load";
    case ModelsVerb::kUnload:
      return "unload";
    case ModelsVerb::kLabel:
      return "label";
    case ModelsVerb::kSplit:
      return "split";
    case ModelsVerb::kRollout:
      return "rollout";
    case ModelsVerb::kPromote:
      return "promote";
    case ModelsVerb::kRollback:
      return "rollback";
    case ModelsVerb::kStatus:
      return "status";
    case ModelsVerb::kHistory:
      return "history";
    case ModelsVerb::kUpload:
      return "upload";
  }
  return "";
}

void RegisterModelsFlags(CLI::App* models, ModelsFlags* f) {
  models->require_subcommand(1);
  models->fallthrough();  // `slipway models list --json` as well as `models --json list`
  models->add_option("--url", f->url, "Server admin endpoint [http://|https://]HOST[:PORT]")
      ->capture_default_str()
      ->type_name("URL")
      ->check(Checked([](const std::string& s) { return ParseServerUrl(s); }));
  models->add_flag("--json", f->json, "Print the server's JSON reply as is");
  models
      ->add_option("--timeout", f->timeout_seconds,
                   "Seconds to wait for the connection and for the reply")
      ->capture_default_str()
      ->check(Seconds());
  // Cross-flag rules, after every verb's options are in.
  models->callback([f] {
    Status st = ValidateModelsFlags(*f);
    if (!st.ok()) throw CLI::ValidationError(st.message());
  });

  AddVerb(models, f, ModelsVerb::kList, "List the repository's models and their states");

  CLI::App* load = AddVerb(models, f, ModelsVerb::kLoad, "Load (or reload) a model");
  AddModel(load, f);
  load->add_option("--config", f->config_path,
                   "Model configuration file, sent as the load request's \"config\" parameter")
      ->check(CLI::ExistingFile);

  AddModel(AddVerb(models, f, ModelsVerb::kUnload, "Unload a model"), f);

  CLI::App* label =
      AddVerb(models, f, ModelsVerb::kLabel, "Point a version label at a version, or delete it");
  AddModel(label, f);
  label->add_option("LABEL", f->label, "Label name, e.g. stable or canary")->required();
  CLI::Option* label_version =
      label->add_option("VERSION", f->version, "Version the label points to")->check(WholeNumber());
  label->add_flag("--delete", f->remove, "Delete the label")->excludes(label_version);

  CLI::App* split = AddVerb(models, f, ModelsVerb::kSplit,
                            "Split traffic between versions by weight, or clear the split");
  AddModel(split, f);
  CLI::Option* entries =
      split->add_option("WEIGHTS", f->split, "VERSION=WEIGHT... (VERSION a number or a label)")
          ->type_name("VERSION=WEIGHT")
          ->check(Checked([](const std::string& s) { return ParseSplitEntry(s); }));
  CLI::Option* shadow =
      split->add_option("--shadow", f->shadow, "Mirror FRACTION (0..1] of requests to VERSION")
          ->type_name("VERSION:FRACTION")
          ->check(Checked([](const std::string& s) { return ParseShadow(s); }));
  split->add_flag("--clear", f->remove, "Remove the split (all traffic to the default version)")
      ->excludes(entries)
      ->excludes(shadow);

  CLI::App* rollout =
      AddVerb(models, f, ModelsVerb::kRollout, "Start a staged rollout of a version");
  AddModel(rollout, f);
  rollout->add_option("VERSION", f->version, "Candidate version")->required()->check(WholeNumber());

  CLI::App* promote = AddVerb(models, f, ModelsVerb::kPromote,
                              "Promote the rollout candidate (or the given version) to stable");
  AddModel(promote, f);
  promote->add_option("VERSION", f->version, "Version to promote (default: the candidate)")
      ->check(WholeNumber());

  AddModel(AddVerb(models, f, ModelsVerb::kRollback,
                   "Abort the rollout and send all traffic back to the stable version"),
           f);
  AddModel(AddVerb(models, f, ModelsVerb::kStatus,
                   "Show labels, traffic split, shadow and rollout state"),
           f);

  CLI::App* history =
      AddVerb(models, f, ModelsVerb::kHistory, "Show the model's routing and lifecycle events");
  AddModel(history, f);
  history->add_option("--limit", f->limit, "Most recent events to show (default: the server's)")
      ->check(WholeNumber());

  CLI::App* upload = AddVerb(models, f, ModelsVerb::kUpload,
                             "Upload a model file as a new version (or replace a version)");
  AddModel(upload, f);
  upload->add_option("FILE", f->file, "Model file, e.g. model.onnx")
      ->required()
      ->check(CLI::ExistingFile);
  upload->add_option("--version", f->version, "Version number (default: the next free one)")
      ->check(WholeNumber());
}

int RunModelsCommand(const ModelsFlags& flags) {
  auto url = ParseServerUrl(flags.url);
  if (!url.ok()) {
    std::fprintf(stderr, "slipway models: --url: %s\n", url.status().message().c_str());
    return kExitUsage;
  }
  auto request = BuildAdminRequest(flags, ReadFileBytes);
  if (!request.ok()) {
    std::fprintf(stderr, "slipway models: %s\n", request.status().message().c_str());
    return kExitUsage;
  }
  const std::string where = url->Origin() + url->base_path;

  // An http URL uses the plain client directly (which also takes IPv6 literals without
  // brackets); https needs the scheme-dispatching constructor.
  std::string host = url->host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::unique_ptr<httplib::Client> client = url->scheme == "http"
                                                ? std::make_unique<httplib::Client>(host, url->port)
                                                : std::make_unique<httplib::Client>(url->Origin());
  const auto sec = static_cast<time_t>(flags.timeout_seconds);
  const auto usec = static_cast<time_t>((flags.timeout_seconds - static_cast<double>(sec)) * 1e6);
  client->set_connection_timeout(sec, usec);
  client->set_read_timeout(sec, usec);
  client->set_write_timeout(sec, usec);

  httplib::Request req;
  req.method = request->method;
  req.path = url->base_path + request->path;
  req.body = std::move(request->body);
  req.headers.emplace("Accept", "application/json");
  if (!request->content_type.empty()) req.headers.emplace("Content-Type", request->content_type);
  httplib::Result res = client->send(req);
  if (!res) {
    std::fprintf(stderr, "error: %s\n",
                 TransportError(res.error(), *request, where, flags.timeout_seconds).c_str());
    return kExitFailed;
  }
  if (res->status < 200 || res->status > 299) {
    std::fprintf(stderr, "%s\n", FormatHttpError(res->status, res->body).c_str());
    return kExitFailed;
  }
  if (flags.json) {
    Print(res->body);
    return kExitOk;
  }
  auto text = FormatReply(flags, res->body);
  if (!text.ok()) {
    std::fprintf(stderr, "error: unexpected reply from %s to %s %s: %s\n", where.c_str(),
                 request->method.c_str(), request->path.c_str(), text.status().message().c_str());
    return kExitFailed;
  }
  Print(*text);
  return kExitOk;
}

}  // namespace slipway::app::models
