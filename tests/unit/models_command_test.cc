// Tests of `slipway models`'s pure parts: command lines (through CLI11, as main() parses them)
// to HTTP method, path and body; the URL, split and shadow parsers; and the server's JSON
// replies to printed tables, routing summaries, confirmations and error lines.
#include "slipway/app/models/models_command.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

#include "slipway/app/models/admin_reply_format.h"
#include "slipway/app/models/admin_request.h"

namespace slipway::app::models {
namespace {

using core::Result;
using core::Status;

// Parses `slipway models ARGS...` the way main() does; throws CLI::ParseError on bad arguments.
ModelsFlags Parse(std::vector<std::string> args) {
  CLI::App app{"slipway"};
  app.require_subcommand(1);
  CLI::App* models = app.add_subcommand("models");
  ModelsFlags flags;
  RegisterModelsFlags(models, &flags);
  args.insert(args.begin(), {"slipway", "models"});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return flags;
}

// Files by path, for load --config and upload.
FileReader FakeFiles(std::map<std::string, std::string> files) {
  return [files](const std::string& path) -> Result<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return Status::NotFound("cannot open " + path);
    return it->second;
  };
}

// The text of a formatter's result, or the error, so a failure shows in the comparison.
std::string Ok(const Result<std::string>& r) {
  return r.ok() ? r.value() : "<error: " + r.status().message() + ">";
}

AdminRequest Build(const std::vector<std::string>& args, const FileReader& files = FakeFiles({})) {
  auto request = BuildAdminRequest(Parse(args), files);
  EXPECT_TRUE(request.ok()) << request.status().message();
  return request.ok() ? request.value() : AdminRequest{};
}

void ExpectRequest(const AdminRequest& r, const std::string& method, const std::string& path,
                   const std::string& body) {
  EXPECT_EQ(r.method, method);
  EXPECT_EQ(r.path, path);
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.content_type, body.empty() ? "" : "application/json");
}

TEST(ModelsCommand, RepositoryVerbs) {
  ExpectRequest(Build({"list"}), "POST", "/v2/repository/index", "");
  ExpectRequest(Build({"load", "resnet"}), "POST", "/v2/repository/models/resnet/load", "{}");
  ExpectRequest(Build({"unload", "resnet"}), "POST", "/v2/repository/models/resnet/unload", "{}");
  ExpectRequest(Build({"unload", "my model/v2?"}), "POST",
                "/v2/repository/models/my%20model%2Fv2%3F/unload", "{}");
}

TEST(ModelsCommand, LoadSendsTheConfigFileAsAJsonString) {
  ModelsFlags f;
  f.verb = ModelsVerb::kLoad;
  f.model = "m";
  f.config_path = "c.json";
  auto r =
      BuildAdminRequest(f, FakeFiles({{"c.json", "{\"max_batch_size\": 8,\n\"x\": \"\\\"\"}"}}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body, R"({"parameters":{"config":"{\"max_batch_size\": 8,\n\"x\": \"\\\"\"}"}})");
  f.config_path = "missing.json";
  EXPECT_EQ(BuildAdminRequest(f, FakeFiles({})).status().code(), core::StatusCode::kNotFound);
}

TEST(ModelsCommand, Labels) {
  ExpectRequest(Build({"label", "m", "stable", "2"}), "PUT", "/v2/models/m/labels/stable",
                R"({"version":2})");
  ExpectRequest(Build({"label", "m", "canary", "--delete"}), "DELETE", "/v2/models/m/labels/canary",
                "");
  EXPECT_THROW(Parse({"label", "m", "stable"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"label", "m", "stable", "2", "--delete"}), CLI::ExcludesError);
  EXPECT_THROW(Parse({"label", "m", "stable", "two"}), CLI::ParseError);
  EXPECT_THROW(Parse({"label", "m", "stable", "0"}), CLI::ParseError);
}

TEST(ModelsCommand, TrafficSplit) {
  ExpectRequest(Build({"split", "m", "1=90", "2=10", "--shadow", "2:0.1"}), "PUT",
                "/v2/models/m/traffic",
                R"({"split":{"1":90,"2":10},"shadow":{"version":"2","fraction":0.1}})");
  ExpectRequest(Build({"split", "m", "stable=3", "canary=1"}), "PUT", "/v2/models/m/traffic",
                R"({"split":{"stable":3,"canary":1}})");
  ExpectRequest(Build({"split", "m", "--clear"}), "DELETE", "/v2/models/m/traffic", "");
  EXPECT_THROW(Parse({"split", "m"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"split", "m", "1=90", "1=10"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"split", "m", "1:90"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"split", "m", "1=-5"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"split", "m", "1=90", "--shadow", "2:1.5"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"split", "m", "1=90", "--shadow", "2"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"split", "m", "--clear", "1=90"}), CLI::ExcludesError);
}

TEST(ModelsCommand, RolloutVerbs) {
  ExpectRequest(Build({"rollout", "m", "2"}), "POST", "/v2/models/m/rollout", R"({"version":2})");
  ExpectRequest(Build({"promote", "m"}), "POST", "/v2/models/m/promote", "{}");
  ExpectRequest(Build({"promote", "m", "3"}), "POST", "/v2/models/m/promote", R"({"version":3})");
  ExpectRequest(Build({"rollback", "m"}), "POST", "/v2/models/m/rollback", "{}");
  EXPECT_THROW(Parse({"rollout", "m"}), CLI::RequiredError);
  EXPECT_THROW(Parse({"rollback"}), CLI::RequiredError);
}

TEST(ModelsCommand, ReadingVerbs) {
  ExpectRequest(Build({"status", "m"}), "GET", "/v2/models/m/routing", "");
  ExpectRequest(Build({"history", "m"}), "GET", "/v2/models/m/history", "");
  ExpectRequest(Build({"history", "m", "--limit", "5"}), "GET", "/v2/models/m/history?limit=5", "");
  EXPECT_THROW(Parse({"history", "m", "--limit", "0"}), CLI::ParseError);
}

TEST(ModelsCommand, UploadSendsTheFileBytes) {
  const std::string bytes("ONNX\0\x01\xff", 7);
  ModelsFlags f;
  f.verb = ModelsVerb::kUpload;
  f.model = "m";
  f.file = "model.onnx";
  auto post = BuildAdminRequest(f, FakeFiles({{"model.onnx", bytes}}));
  ASSERT_TRUE(post.ok()) << post.status().message();
  EXPECT_EQ(post->method, "POST");
  EXPECT_EQ(post->path, "/v2/repository/models/m/versions");
  EXPECT_EQ(post->body, bytes);
  EXPECT_EQ(post->content_type, "application/octet-stream");
  f.version = 3;
  auto put = BuildAdminRequest(f, FakeFiles({{"model.onnx", bytes}}));
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->method, "PUT");
  EXPECT_EQ(put->path, "/v2/repository/models/m/versions/3");
  EXPECT_THROW(Parse({"upload", "m", "/nonexistent/model.onnx"}), CLI::ValidationError);
}

TEST(ModelsCommand, GlobalFlagsBeforeOrAfterTheVerb) {
  ModelsFlags f = Parse({"list"});
  EXPECT_EQ(f.verb, ModelsVerb::kList);
  EXPECT_EQ(f.url, "http://localhost:8000");
  EXPECT_FALSE(f.json);
  f = Parse({"--url", "http://h:9000", "--json", "status", "m"});
  EXPECT_EQ(f.url, "http://h:9000");
  EXPECT_TRUE(f.json);
  f = Parse({"status", "m", "--json", "--timeout", "2.5"});
  EXPECT_TRUE(f.json);
  EXPECT_DOUBLE_EQ(f.timeout_seconds, 2.5);
  EXPECT_THROW(Parse({}), CLI::RequiredError);
  EXPECT_THROW(Parse({"frobnicate"}), CLI::ParseError);
  EXPECT_THROW(Parse({"--url", "ftp://h", "list"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"--timeout", "0", "list"}), CLI::ValidationError);
}

TEST(ModelsCommand, ServerUrls) {
  auto u = ParseServerUrl("http://localhost:8000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->Origin(), "http://localhost:8000");
  EXPECT_EQ(u->base_path, "");
  u = ParseServerUrl("10.0.0.5:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->Origin(), "http://10.0.0.5:8080");
  u = ParseServerUrl("HTTPS://models.example.com/slipway/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->Origin(), "https://models.example.com:443");
  EXPECT_EQ(u->base_path, "/slipway");
  u = ParseServerUrl("http://[::1]:8000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "[::1]");
  EXPECT_EQ(u->port, 8000);
  for (const char* bad : {"", "http://", "ftp://h:1", "h:0", "h:70000", "h:x", "h:", "::1:80",
                          "http://h:80?x=1", "http://u@h", "[::1"}) {
    EXPECT_FALSE(ParseServerUrl(bad).ok()) << bad;
  }
}

TEST(ModelsCommand, SplitEntriesAndShadow) {
  auto e = ParseSplitEntry("canary=25");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->version, "canary");
  EXPECT_EQ(e->weight, 25);
  for (const char* bad : {"", "=5", "1=", "1", "1=x", "1=2.5", "1=-1"}) {
    EXPECT_FALSE(ParseSplitEntry(bad).ok()) << bad;
  }
  auto s = ParseShadow("2:0.25");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->version, "2");
  EXPECT_DOUBLE_EQ(s->fraction, 0.25);
  for (const char* bad : {"2", ":0.1", "2:", "2:0", "2:1.01", "2:-0.1", "2:nan", "2:x"}) {
    EXPECT_FALSE(ParseShadow(bad).ok()) << bad;
  }
  EXPECT_EQ(PathSegment("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(PathSegment("a b/c%"), "a%20b%2Fc%25");
}

TEST(ModelsReplyFormat, TablesPadColumnsAndMarkEmptyCells) {
  EXPECT_EQ(FormatTable({{"A", "BB"}, {"long", ""}, {"x\ny", "z"}}),
            "A     BB\n"
            "long  -\n"
            "x y   z\n");
}

TEST(ModelsReplyFormat, ModelIndex) {
  auto out = FormatModelIndex(
      R"([{"name":"resnet","version":"1","state":"READY","reason":""},)"
      R"({"name":"bert","state":"UNAVAILABLE","reason":"failed to load: bad file"}])");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out,
            "NAME    VERSION  STATE        REASON\n"
            "resnet  1        READY        -\n"
            "bert    -        UNAVAILABLE  failed to load: bad file\n");
  EXPECT_EQ(Ok(FormatModelIndex("[]")), "no models in the repository\n");
  EXPECT_FALSE(FormatModelIndex("{\"models\":[]}").ok());
  EXPECT_FALSE(FormatModelIndex("<html>").ok());
}

TEST(ModelsReplyFormat, RoutingWithEverything) {
  auto out =
      FormatRouting(R"({"model":"m","default_version":1,"labels":{"stable":1,"canary":2},)"
                    R"("traffic":{"split":[{"version":1,"weight":90},{"version":2,"weight":10}],)"
                    R"("shadow":{"version":2,"fraction":0.1}},)"
                    R"("rollout":{"state":"running","candidate":2,"stable":1,"step":1,"steps":3,)"
                    R"("reason":"waiting for 100 requests"}})");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out,
            "Model:            m\n"
            "Default version:  1\n"
            "Labels:           stable=1, canary=2\n"
            "Traffic split:    1=90 (90%), 2=10 (10%)\n"
            "Shadow:           version 2, 10% of requests mirrored\n"
            "Rollout:          running: candidate 2, stable 1, step 1 of 3\n"
            "Rollout reason:   waiting for 100 requests\n");
}

TEST(ModelsReplyFormat, RoutingWithoutTrafficOrRollout) {
  auto out = FormatRouting(R"({"model":"m","default_version":3,"labels":{},"traffic":null})");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out,
            "Model:            m\n"
            "Default version:  3\n"
            "Labels:           none\n"
            "Traffic split:    none (all requests go to the default version)\n"
            "Shadow:           none\n"
            "Rollout:          none\n");
  out = FormatRouting(R"({"model":"m","traffic":{"split":{"1":3,"2":1}}})");
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->find("Traffic split:    1=3 (75%), 2=1 (25%)\n"), std::string::npos) << *out;
  EXPECT_FALSE(FormatRouting("[]").ok());
}

TEST(ModelsReplyFormat, History) {
  auto out = FormatHistory(
      R"({"model":"m","events":[)"
      R"({"id":1,"time":"2026-11-30T10:00:00.123Z","kind":"load","version":2,"reason":""},)"
      R"({"id":2,"time":"2026-11-30T10:05:00.000Z","kind":"promote","version":2,)"
      R"("reason":"guards held for 3 steps","details":{"p99_ms":4.1}}]})");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out,
            "TIME                      KIND     VERSION  REASON\n"
            "2026-11-30T10:00:00.123Z  load     2        -\n"
            "2026-11-30T10:05:00.000Z  promote  2        guards held for 3 steps\n");
  EXPECT_EQ(Ok(FormatHistory(R"({"model":"m","events":[]})")),
            "no events recorded for model 'm'\n");
  EXPECT_FALSE(FormatHistory(R"({"model":"m"})").ok());
}

TEST(ModelsReplyFormat, Confirmations) {
  ModelsFlags f = Parse({"split", "m", "1=90", "2=10", "--shadow", "2:0.1"});
  EXPECT_EQ(Ok(FormatReply(f, "")),
            "set the traffic split of model 'm': 1=90, 2=10; shadow: 10% of requests mirrored to "
            "version 2\n");
  EXPECT_EQ(Ok(FormatReply(Parse({"label", "m", "stable", "2"}), "{}")),
            "label 'stable' of model 'm' now points to version 2\n");
  EXPECT_EQ(Ok(FormatReply(Parse({"promote", "m"}), "")),
            "promoted the rollout candidate of model 'm'\n");
  // A reply that carries the routing state is summarized after the confirmation.
  EXPECT_EQ(Ok(FormatReply(Parse({"rollback", "m"}),
                           R"({"model":"m","default_version":1,"labels":{"stable":1}})")),
            "rolled back model 'm'\n"
            "\n"
            "Model:            m\n"
            "Default version:  1\n"
            "Labels:           stable=1\n"
            "Traffic split:    none (all requests go to the default version)\n"
            "Shadow:           none\n"
            "Rollout:          none\n");
  ModelsFlags up;
  up.verb = ModelsVerb::kUpload;
  up.model = "m";
  up.file = "model.onnx";
  EXPECT_EQ(Ok(FormatReply(up, R"({"model":"m","version":3,"state":"READY"})")),
            "uploaded model.onnx as model 'm' version 3 (READY)\n");
  EXPECT_EQ(Ok(FormatReply(up, "")), "uploaded model.onnx as model 'm' (new version)\n");
}

TEST(ModelsReplyFormat, HttpErrors) {
  EXPECT_EQ(FormatHttpError(404, R"({"error":"unknown model 'x'"})"),
            "error: unknown model 'x' (HTTP 404)");
  EXPECT_EQ(FormatHttpError(502, "Bad Gateway\n<html>..."), "error: Bad Gateway (HTTP 502)");
  EXPECT_EQ(FormatHttpError(500, ""), "error: the server gave no reason (HTTP 500)");
}

}  // namespace
}  // namespace slipway::app::models
