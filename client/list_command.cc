#include "client/list_command.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"

namespace sg::client {
namespace v1 = ::sessiongrid::v1;

namespace {

constexpr int kPageSize = 1000;  // the server's largest page

const char* ClassName(v1::SessionClass c) {
  switch (c) {
    case v1::SESSION_CLASS_ANONYMOUS:
      return "anonymous";
    case v1::SESSION_CLASS_AUTHENTICATED:
      return "authenticated";
    default:
      return "unspecified";
  }
}

absl::Status PrintLine(const v1::Session& session, bool json, std::ostream& out) {
  if (json) {
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    std::string line;
    if (!google::protobuf::util::MessageToJsonString(session, &line, options)
             .ok()) {
      return absl::InternalError("cannot render a session as JSON");
    }
    out << line << '\n';
    return absl::OkStatus();
  }
  const absl::Time expires = absl::FromUnixSeconds(session.expire_time().seconds());
  char row[512];
  std::snprintf(row, sizeof(row), "%-44s %-13s %-24s %s\n", session.id().c_str(),
                ClassName(session.session_class()),
                session.principal().empty() ? "-" : session.principal().c_str(),
                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", expires, absl::UTCTimeZone())
                    .c_str());
  out << row;
  return absl::OkStatus();
}

}  // namespace

absl::Status ListAllSessions(const Client& client, int limit, bool json,
                             std::ostream& out) {
  if (!json) {
    char header[128];
    std::snprintf(header, sizeof(header), "%-44s %-13s %-24s %s\n", "ID", "CLASS",
                  "PRINCIPAL", "EXPIRES");
    out << header;
  }
  v1::ListSessionsRequest request;
  request.set_include_data(json);
  int64_t printed = 0;
  // Each page's token is past the last; 10^7 pages bound a runaway loop.
  for (int page = 0; page < 10'000'000; ++page) {
    int want = kPageSize;
    if (limit > 0) want = static_cast<int>(std::min<int64_t>(kPageSize, limit - printed));
    request.set_page_size(want);
    absl::StatusOr<v1::ListSessionsResponse> response = client.ListSessions(request);
    if (!response.ok()) return response.status();
    for (const v1::Session& session : response->sessions()) {
      if (absl::Status s = PrintLine(session, json, out); !s.ok()) return s;
      ++printed;
    }
    if (response->next_page_token().empty() || (limit > 0 && printed >= limit)) break;
    request.set_page_token(response->next_page_token());
  }
  if (!json) out << printed << (printed == 1 ? " session\n" : " sessions\n");
  return absl::OkStatus();
}

}  // namespace sg::client
