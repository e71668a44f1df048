// Tests for PrometheusText (text exposition format 0.0.4) and the process_* metrics.
#include "slipway/monitoring/prometheus_text.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <limits>

#include "slipway/monitoring/process_metrics.h"

namespace slipway::monitoring {
namespace {

TEST(PrometheusTextTest, CounterWithoutLabels) {
  PrometheusText text;
  text.Family("slipway_requests_total", "counter", "Requests received.");
  text.Sample("slipway_requests_total", {}, 42);
  EXPECT_EQ(text.Take(),
            "# HELP slipway_requests_total Requests received.\n"
            "# TYPE slipway_requests_total counter\n"
            "slipway_requests_total 42\n");
}

TEST(PrometheusTextTest, CounterWithLabels) {
  PrometheusText text;
  text.Family("slipway_requests_total", "counter", "Requests received.");
  text.Sample("slipway_requests_total", {{"model", "resnet"}, {"version", "3"}}, 7);
  text.Sample("slipway_requests_total", {{"model", "bert"}, {"version", "1"}}, 0);
  EXPECT_EQ(text.Take(),
            "# HELP slipway_requests_total Requests received.\n"
            "# TYPE slipway_requests_total counter\n"
            "slipway_requests_total{model=\"resnet\",version=\"3\"} 7\n"
            "slipway_requests_total{model=\"bert\",version=\"1\"} 0\n");
}

TEST(PrometheusTextTest, EscapesHelpAndLabelValues) {
  PrometheusText text;
  text.Family("m", "gauge", "a \\ b\nc \"quoted\"");
  text.Sample("m", {{"path", "C:\\dir\n\"x\""}}, 1);
  EXPECT_EQ(text.Take(),
            "# HELP m a \\\\ b\\nc \"quoted\"\n"
            "# TYPE m gauge\n"
            "m{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n");
}

TEST(PrometheusTextTest, OneHelpAndTypePerFamily) {
  PrometheusText text;
  text.Family("a", "gauge", "First.");
  text.Sample("a", {{"k", "1"}}, 1);
  text.Family("a", "counter", "Ignored.");
  text.Sample("a", {{"k", "2"}}, 2);
  text.Family("b", "gauge", "Second.");
  text.Sample("b", {}, 3);
  EXPECT_EQ(text.Take(),
            "# HELP a First.\n# TYPE a gauge\n"
            "a{k=\"1\"} 1\n"
            "a{k=\"2\"} 2\n"
            "# HELP b Second.\n# TYPE b gauge\n"
            "b 3\n");
}

TEST(PrometheusTextTest, TakeResetsTheWriter) {
  PrometheusText text;
  text.Family("a", "gauge", "A.");
  text.Sample("a", {}, 1);
  text.Take();
  text.Family("a", "gauge", "A.");
  text.Sample("a", {}, 2);
  EXPECT_EQ(text.Take(), "# HELP a A.\n# TYPE a gauge\na 2\n");
  EXPECT_EQ(text.Take(), "");
}

TEST(PrometheusTextTest, HistogramIsCumulative) {
  PrometheusText text;
  text.Family("latency_seconds", "histogram", "Request latency.");
  text.Histogram("latency_seconds", {{"model", "m"}}, {0.005, 0.1, 1}, {2, 3, 0, 1}, 1.75);
  EXPECT_EQ(text.Take(),
            "# HELP latency_seconds Request latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{model=\"m\",le=\"0.005\"} 2\n"
            "latency_seconds_bucket{model=\"m\",le=\"0.1\"} 5\n"
            "latency_seconds_bucket{model=\"m\",le=\"1\"} 5\n"
            "latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 6\n"
            "latency_seconds_sum{model=\"m\"} 1.75\n"
            "latency_seconds_count{model=\"m\"} 6\n");
}

TEST(PrometheusTextTest, HistogramWithoutLabels) {
  PrometheusText text;
  text.Histogram("h", {}, {10}, {0, 0}, 0);
  EXPECT_EQ(text.Take(),
            "h_bucket{le=\"10\"} 0\n"
            "h_bucket{le=\"+Inf\"} 0\n"
            "h_sum 0\n"
            "h_count 0\n");
}

TEST(PrometheusTextTest, FormatsValues) {
  EXPECT_EQ(PrometheusText::FormatValue(0), "0");
  EXPECT_EQ(PrometheusText::FormatValue(-0.0), "0");
  EXPECT_EQ(PrometheusText::FormatValue(1), "1");
  EXPECT_EQ(PrometheusText::FormatValue(-17), "-17");
  EXPECT_EQ(PrometheusText::FormatValue(1e15), "1000000000000000");
  EXPECT_EQ(PrometheusText::FormatValue(9007199254740992.0), "9007199254740992");  // 2^53
  EXPECT_EQ(PrometheusText::FormatValue(-9007199254740992.0), "-9007199254740992");
  EXPECT_EQ(PrometheusText::FormatValue(0.25), "0.25");
  EXPECT_EQ(PrometheusText::FormatValue(0.1), "0.1");
  EXPECT_EQ(PrometheusText::FormatValue(1.5), "1.5");
  EXPECT_EQ(PrometheusText::FormatValue(1e-7), "1e-07");
  EXPECT_EQ(PrometheusText::FormatValue(1e20), "1e+20");
  EXPECT_EQ(PrometheusText::FormatValue(1.8446744073709552e19), "1.8446744073709552e+19");
  EXPECT_EQ(PrometheusText::FormatValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(PrometheusText::FormatValue(9007199254740994.0), "9.007199254740994e+15");  // 2^53+2
  EXPECT_EQ(PrometheusText::FormatValue(123456.789), "123456.789");
  EXPECT_EQ(PrometheusText::FormatValue(0.0001), "1e-04");
  EXPECT_EQ(PrometheusText::FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(PrometheusText::FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(PrometheusText::FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(PrometheusText::FormatValue(std::numeric_limits<double>::max()),
            "1.7976931348623157e+308");

  // The same formatting reaches the samples.
  PrometheusText text;
  text.Sample("x", {}, 0.25);
  text.Sample("x", {}, std::nan(""));
  text.Sample("x", {}, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(text.Take(), "x 0.25\nx NaN\nx -Inf\n");
}

TEST(PrometheusTextTest, ValidatesNames) {
  EXPECT_TRUE(PrometheusText::ValidMetricName("slipway_requests_total"));
  EXPECT_TRUE(PrometheusText::ValidMetricName("_x"));
  EXPECT_TRUE(PrometheusText::ValidMetricName(":a:b9"));
  EXPECT_TRUE(PrometheusText::ValidMetricName("A1_"));
  EXPECT_FALSE(PrometheusText::ValidMetricName(""));
  EXPECT_FALSE(PrometheusText::ValidMetricName("9abc"));
  EXPECT_FALSE(PrometheusText::ValidMetricName("a-b"));
  EXPECT_FALSE(PrometheusText::ValidMetricName("a b"));
  EXPECT_FALSE(PrometheusText::ValidMetricName("a.b"));
  EXPECT_FALSE(PrometheusText::ValidMetricName("é"));

  EXPECT_TRUE(PrometheusText::ValidLabelName("model"));
  EXPECT_TRUE(PrometheusText::ValidLabelName("_v2"));
  EXPECT_TRUE(PrometheusText::ValidLabelName("le"));
  EXPECT_FALSE(PrometheusText::ValidLabelName(""));
  EXPECT_FALSE(PrometheusText::ValidLabelName("a:b"));
  EXPECT_FALSE(PrometheusText::ValidLabelName("2x"));
  EXPECT_FALSE(PrometheusText::ValidLabelName("a-b"));
}

TEST(ProcessMetricsTest, ValuesArePlausible) {
  auto m = ReadProcessMetrics();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GE(m->cpu_seconds, 0);
  EXPECT_GT(m->resident_bytes, 1024.0 * 1024);
  EXPECT_GE(m->virtual_bytes, m->resident_bytes);
  EXPECT_GE(m->threads, 1);
  EXPECT_GE(m->open_fds, 3);
  EXPECT_GE(m->max_fds, m->open_fds);
  const double now = static_cast<double>(time(nullptr));
  EXPECT_LE(m->start_time_seconds, now + 2);  // btime is whole seconds
  EXPECT_GT(m->start_time_seconds, now - 86400);
}

TEST(ProcessMetricsTest, OpeningAFileRaisesOpenFds) {
  auto before = ReadProcessMetrics();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto during = ReadProcessMetrics();
  close(fd);
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_EQ(during->open_fds, before->open_fds + 1);
  auto after = ReadProcessMetrics();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->open_fds, before->open_fds);
}

TEST(ProcessMetricsTest, WritesStandardNames) {
  ProcessMetrics m{.cpu_seconds = 1.5,
                   .resident_bytes = 4096,
                   .virtual_bytes = 8192,
                   .open_fds = 5,
                   .max_fds = 1024,
                   .threads = 3,
                   .start_time_seconds = 1700000000.25};
  PrometheusText text;
  WriteProcessMetrics(m, text);
  EXPECT_EQ(text.Take(),
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
            "# TYPE process_cpu_seconds_total counter\n"
            "process_cpu_seconds_total 1.5\n"
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes 4096\n"
            "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
            "# TYPE process_virtual_memory_bytes gauge\n"
            "process_virtual_memory_bytes 8192\n"
            "# HELP process_open_fds Number of open file descriptors.\n"
            "# TYPE process_open_fds gauge\n"
            "process_open_fds 5\n"
            "# HELP process_max_fds Maximum number of open file descriptors.\n"
            "# TYPE process_max_fds gauge\n"
            "process_max_fds 1024\n"
            "# HELP process_start_time_seconds Start time of the process since unix epoch in "
            "seconds.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds 1700000000.25\n"
            "# HELP process_threads Number of OS threads in the process.\n"
            "# TYPE process_threads gauge\n"
            "process_threads 3\n");
}

}  // namespace
}  // namespace slipway::monitoring
