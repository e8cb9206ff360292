// sg_admin_http: the route table, and the standalone server over loopback
// (keep-alive, 404, bad HTTP, Stop with a connection open).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "common/http_admin/handler_table.h"
#include "common/http_admin/server.h"
#include "common/prometheus_text.h"
#include "gtest/gtest.h"

namespace sg::http_admin {
namespace {

TEST(HandlerTableTest, RoutesExactPathsIgnoringTheQuery) {
  HandlerTable table;
  table.Add("/a", [] { return Response{200, std::string(kTextPlain), "a\n"}; });
  table.Add("/b", [] { return Response{503, std::string(kJson), "{}"}; });
  table.Add("", [] { return Response{200, "", "never"}; });
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Handle("/a").body, "a\n");
  EXPECT_EQ(table.Handle("/a?x=1&y").body, "a\n");
  EXPECT_EQ(table.Handle("/b").status, 503);
  EXPECT_EQ(table.Handle("/b").content_type, kJson);
  const Response missing = table.Handle("/a/");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "not found\n");
  EXPECT_EQ(table.Handle("").status, 404);
}

TEST(HandlerTableTest, ALaterAddReplacesTheRoute) {
  HandlerTable table;
  table.Add("/x", [] { return Response{200, "", "first"}; });
  table.Add("/x", [] { return Response{200, "", "second"}; });
  EXPECT_EQ(table.Handle("/x").body, "second");
}

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  // Every read gives up after 10 s, so a server that never answers fails
  // the test instead of hanging it.
  const timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

// Reads until `n` complete responses (Content-Length bodies), EOF or a
// 10 s silence.
std::string ReadResponses(int fd, int n) {
  std::string raw;
  char buf[4096];
  auto complete = [&] {
    size_t pos = 0;
    for (int i = 0; i < n; ++i) {
      const size_t end = raw.find("\r\n\r\n", pos);
      if (end == std::string::npos) return false;
      const size_t cl = raw.find("Content-Length: ", pos);
      if (cl == std::string::npos || cl > end) return false;
      const size_t len = std::stoul(raw.substr(cl + 16));
      if (raw.size() < end + 4 + len) return false;
      pos = end + 4 + len;
    }
    return true;
  };
  while (!complete()) {
    const ssize_t got = ::recv(fd, buf, sizeof(buf), 0);
    if (got <= 0) break;
    raw.append(buf, static_cast<size_t>(got));
  }
  return raw;
}

bool Send(int fd, const std::string& s) {
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(s.size());
}

TEST(AdminServerTest, ServesKeepAliveRequestsFromTheTable) {
  HandlerTable table;
  table.Add("/metrics", [] {
    return Response{200, std::string(kPrometheusText), "sg_x 1\n"};
  });
  auto server = Server::Start("127.0.0.1:0", std::move(table));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(),
            "127.0.0.1:" + std::to_string((*server)->port()));

  const int fd = Connect((*server)->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(Send(fd,
                   "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /other HTTP/1.1\r\nHost: t\r\n\r\n"));
  const std::string raw = ReadResponses(fd, 2);
  ::close(fd);
  EXPECT_TRUE(absl::StartsWith(raw, "HTTP/1.1 200 OK\r\n")) << raw;
  EXPECT_TRUE(absl::StrContains(
      raw, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_TRUE(absl::StrContains(raw, "Cache-Control: no-store\r\n"));
  EXPECT_TRUE(absl::StrContains(raw, "\r\n\r\nsg_x 1\n"));
  EXPECT_TRUE(absl::StrContains(raw, "HTTP/1.1 404 Not Found\r\n")) << raw;
  EXPECT_TRUE(absl::EndsWith(raw, "not found\n"));
}

TEST(AdminServerTest, BadHttpClosesTheConnection) {
  auto server = Server::Start("127.0.0.1:0", HandlerTable());
  ASSERT_TRUE(server.ok()) << server.status();
  const int fd = Connect((*server)->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(Send(fd, "NOT HTTP AT ALL\r\n\r\n"));
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);  // closed, no response
  ::close(fd);
}

TEST(AdminServerTest, StopsWithAConnectionOpenAndFreesThePort) {
  auto server = Server::Start("127.0.0.1:0", HandlerTable());
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  const int fd = Connect(port);
  ASSERT_GE(fd, 0);
  (*server)->Stop();
  (*server)->Stop();  // idempotent
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);
  ::close(fd);
  server->reset();
  auto again =
      Server::Start("127.0.0.1:" + std::to_string(port), HandlerTable());
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(AdminServerTest, RejectsBadAddressesAndPortsInUse) {
  EXPECT_EQ(Server::Start("no-port", HandlerTable()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Server::Start("127.0.0.1:99999", HandlerTable()).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = Server::Start("127.0.0.1:0", HandlerTable());
  ASSERT_TRUE(first.ok());
  auto second = Server::Start((*first)->address(), HandlerTable());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(second.status().message(), "cannot listen on"));
}

TEST(PrometheusTextTest, SamplesHeadersAndEscapedLabels) {
  std::string out;
  prometheus::AppendHeader(&out, "sg_a", "gauge", "Help text.");
  prometheus::AppendSample(&out, "sg_a", prometheus::Label("k", "v\"\\\n"),
                           int64_t{-3});
  prometheus::AppendSample(&out, "sg_b", "", uint64_t{18446744073709551615u});
  prometheus::AppendSample(&out, "sg_c", "", 0.25);
  EXPECT_EQ(out,
            "# HELP sg_a Help text.\n# TYPE sg_a gauge\n"
            "sg_a{k=\"v\\\"\\\\\\n\"} -3\n"
            "sg_b 18446744073709551615\n"
            "sg_c 0.25\n");
}

}  // namespace
}  // namespace sg::http_admin
