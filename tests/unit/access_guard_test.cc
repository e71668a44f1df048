// AccessGuard: roles decide what a key may call, keys are read from the environment and from a
// file (plain or as SHA-256 digests) and reread on demand, and the token bucket admits the burst
// then the configured rate per client, timed by a fake clock.
#include "slipway/security/access_guard.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace slipway::security {
namespace {

using Clock = AccessGuard::Clock;

std::unique_ptr<AccessGuard> Make(AccessGuard::Options o) {
  auto g = AccessGuard::Create(std::move(o));
  EXPECT_TRUE(g.ok()) << g.status().message();
  return g.ok() ? std::move(g).value() : nullptr;
}

TEST(AccessGuardTest, WithoutKeysEverythingIsAllowed) {
  auto g = Make({});
  EXPECT_FALSE(g->auth_enabled());
  EXPECT_TRUE(g->Check(Access::kAdmin, "", "10.0.0.1").allowed());
}

TEST(AccessGuardTest, RolesDecideWhatAKeyMayCall) {
  AccessGuard::Options o;
  o.keys_env = "admin=admin-secret-1, infer=infer-secret-1";
  auto g = Make(o);
  ASSERT_TRUE(g->auth_enabled());
  EXPECT_EQ(g->Check(Access::kInfer, "", "a").outcome, Verdict::kUnauthenticated);
  EXPECT_EQ(g->Check(Access::kInfer, "nope", "a").outcome, Verdict::kUnauthenticated);
  EXPECT_TRUE(g->Check(Access::kInfer, "infer-secret-1", "a").allowed());
  EXPECT_EQ(g->Check(Access::kAdmin, "infer-secret-1", "a").outcome, Verdict::kForbidden);
  EXPECT_TRUE(g->Check(Access::kAdmin, "admin-secret-1", "a").allowed());
  EXPECT_TRUE(g->Check(Access::kInfer, "admin-secret-1", "a").allowed());  // admin includes infer
  EXPECT_TRUE(g->Check(Access::kHealth, "", "a").allowed());
  EXPECT_TRUE(g->Check(Access::kMetrics, "", "a").allowed());
  o.open_metrics = false;
  auto closed = Make(o);
  EXPECT_EQ(closed->Check(Access::kMetrics, "", "a").outcome, Verdict::kUnauthenticated);
  EXPECT_TRUE(closed->Check(Access::kMetrics, "infer-secret-1", "a").allowed());
}

TEST(AccessGuardTest, CredentialsComeFromBearerOrApiKeyHeaders) {
  EXPECT_EQ(AccessGuard::CredentialFrom("Bearer abc", ""), "abc");
  EXPECT_EQ(AccessGuard::CredentialFrom("bearer  abc ", "zzz"), "abc");
  EXPECT_EQ(AccessGuard::CredentialFrom("", "key1"), "key1");
  EXPECT_EQ(AccessGuard::CredentialFrom("Basic dXNlcg==", ""), "");
}

TEST(AccessGuardTest, KeysFileWithDigestsAndReload) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("slipway-keys-" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream f(path);
    f << "keys:\n  - {name: ci, key: ci-secret-123, roles: [infer]}\n"
      << "  - {name: ops, sha256: " << Sha256Hex("ops-secret-123") << ", roles: [admin]}\n";
  }
  AccessGuard::Options o;
  o.keys_file = path.string();
  auto g = Make(o);
  EXPECT_TRUE(g->Check(Access::kInfer, "ci-secret-123", "a").allowed());
  EXPECT_TRUE(g->Check(Access::kAdmin, "ops-secret-123", "a").allowed());
  EXPECT_EQ(g->Check(Access::kAdmin, "ci-secret-123", "a").message.find("'ci'") !=
                std::string::npos,
            true);
  // A broken file keeps the keys in force; a good one replaces them.
  { std::ofstream(path) << "keys: [{name: x, key: short, roles: [infer]}]\n"; }
  EXPECT_FALSE(g->Reload().ok());
  EXPECT_TRUE(g->Check(Access::kInfer, "ci-secret-123", "a").allowed());
  { std::ofstream(path) << "keys: [{name: new, key: new-secret-123, roles: [infer]}]\n"; }
  EXPECT_TRUE(g->Reload().ok());
  EXPECT_EQ(g->Check(Access::kInfer, "ci-secret-123", "a").outcome, Verdict::kUnauthenticated);
  EXPECT_TRUE(g->Check(Access::kInfer, "new-secret-123", "a").allowed());
  std::filesystem::remove(path);
}

TEST(AccessGuardTest, RefusesMalformedKeys) {
  AccessGuard::Options o;
  o.keys_env = "root=whatever-123";
  EXPECT_FALSE(AccessGuard::Create(o).ok());
  o.keys_env = "admin";
  EXPECT_FALSE(AccessGuard::Create(o).ok());
  o.keys_env = "admin=same-secret-1,infer=same-secret-1";
  EXPECT_FALSE(AccessGuard::Create(o).ok());
  o.keys_env = "";
  o.keys_file = "/nonexistent/keys.yaml";
  auto missing = AccessGuard::Create(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/keys.yaml"), std::string::npos);
}

TEST(AccessGuardTest, TokenBucketAdmitsTheBurstThenTheRatePerClient) {
  Clock::time_point now{};
  AccessGuard::Options o;
  o.rate_per_second = 2;
  o.burst = 3;
  o.now = [&now] { return now; };
  auto g = Make(o);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(g->Check(Access::kInfer, "", "10.0.0.1").allowed());
  const Verdict refused = g->Check(Access::kInfer, "", "10.0.0.1");
  EXPECT_EQ(refused.outcome, Verdict::kRateLimited);
  EXPECT_EQ(refused.retry_after_s, 1);
  // Another client has its own bucket; health checks are never limited.
  EXPECT_TRUE(g->Check(Access::kInfer, "", "10.0.0.2").allowed());
  EXPECT_TRUE(g->Check(Access::kHealth, "", "10.0.0.1").allowed());
  now += std::chrono::milliseconds(500);  // one token back at 2/s
  EXPECT_TRUE(g->Check(Access::kInfer, "", "10.0.0.1").allowed());
  EXPECT_FALSE(g->Check(Access::kInfer, "", "10.0.0.1").allowed());
  now += std::chrono::seconds(60);  // refills to the burst, not beyond
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(g->Check(Access::kInfer, "", "10.0.0.1").allowed());
  EXPECT_FALSE(g->Check(Access::kInfer, "", "10.0.0.1").allowed());
}

TEST(AccessGuardTest, KeyedClientsAreLimitedByKeyNotAddress) {
  Clock::time_point now{};
  AccessGuard::Options o;
  o.keys_env = "infer=key-one-123,infer=key-two-123";
  o.rate_per_second = 1;
  o.burst = 1;
  o.now = [&now] { return now; };
  auto g = Make(o);
  EXPECT_TRUE(g->Check(Access::kInfer, "key-one-123", "10.0.0.1").allowed());
  EXPECT_FALSE(g->Check(Access::kInfer, "key-one-123", "10.0.0.9").allowed());
  EXPECT_TRUE(g->Check(Access::kInfer, "key-two-123", "10.0.0.1").allowed());
}

}  // namespace
}  // namespace slipway::security
