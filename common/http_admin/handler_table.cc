#include "common/http_admin/handler_table.h"

#include <utility>

namespace sg::http_admin {

void HandlerTable::Add(std::string path, Handler handler) {
  if (path.empty()) return;
  routes_.insert_or_assign(std::move(path), std::move(handler));
}

Response HandlerTable::Handle(std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  // Debian's Abseil has its own string_view.
  auto it = routes_.find(absl::string_view(path.data(), path.size()));
  if (it == routes_.end() || !it->second) {
    return Response{404, std::string(kTextPlain), "not found\n"};
  }
  return it->second();
}

}  // namespace sg::http_admin
