// Propagation helpers for absl::Status (Debian's Abseil has no status_macros).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SG_CONCAT_INNER_(a, b) a##b
#define SG_CONCAT_(a, b) SG_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` is not OK.
#define SG_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status sg_status_ = (expr);           \
    if (!sg_status_.ok()) return sg_status_;      \
  } while (0)

// `SG_ASSIGN_OR_RETURN(auto x, F());` declares x from an OK StatusOr, or
// returns its error.
#define SG_ASSIGN_OR_RETURN(lhs, expr) \
  SG_ASSIGN_OR_RETURN_IMPL_(SG_CONCAT_(sg_statusor_, __LINE__), lhs, expr)
#define SG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
