// `sessiongridctl list`: every live session, page after page of
// SessionService.ListSessions, as a table or as JSON lines.
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "sessiongrid/client.h"

namespace sg::client {

// Pages through ListSessions (1000 a page, fewer when `limit` is smaller)
// and prints each session: one table row (id, class, principal, expiry)
// and a closing count, or with `json` one protobuf-JSON Session per line,
// data included (base64). `limit` > 0 stops after that many sessions.
// Returns the first RPC error; what was printed before it stays printed.
absl::Status ListAllSessions(const Client& client, int limit, bool json,
                             std::ostream& out);

}  // namespace sg::client
