// The bypass classifier (edge/classifier) on hostile request fields: the
// input is split into method, target, Upgrade, User-Agent, Accept, Cookie,
// X-Forwarded-For and the peer address at NUL bytes. Properties: the
// decision's reason is one the classifier lists, bypass agrees with its
// kind, the answer does not depend on production mode except by rule 10,
// and the client address is the peer unless the peer is a trusted proxy.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "edge/classifier/classifier.h"

namespace {

using sg::classifier::Classifier;
using sg::classifier::ClassifierOptions;
using sg::classifier::Decision;
using sg::classifier::IpAddress;
using sg::classifier::ReasonKind;
using sg::classifier::RequestView;
using sg::classifier::Rules;

void Check(bool ok) {
  if (!ok) std::abort();
}

const Classifier& Make(bool production) {
  auto make = [](bool p) {
    ClassifierOptions o;
    o.production = p;
    o.trusted_proxies = {"127.0.0.0/8", "::1/128", "192.0.2.0/24"};
    return Classifier::Create(Rules::SeedDefaults(), o)->release();
  };
  static const Classifier* dev = make(false);
  static const Classifier* prod = make(true);
  return *(production ? prod : dev);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::array<std::string_view, 8> f{};
  for (std::string_view& field : f) {
    const size_t nul = in.find('\0');
    field = in.substr(0, nul);
    in =
        nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  }
  RequestView view;
  view.method = f[0];
  view.target = f[1];
  view.upgrade = f[2];
  view.user_agent = f[3];
  view.accept = f[4];
  view.cookie = f[5];
  view.x_forwarded_for = f[6];
  view.peer = IpAddress::Parse(f[7]);

  for (bool production : {false, true}) {
    const Classifier& c = Make(production);
    const Decision d = c.Classify(view);
    Check(d.reason_id < c.num_reasons());
    Check(c.ReasonAt(d.reason_id) == d.reason);
    Check(c.ReasonId(d.reason) == d.reason_id);
    Check(!c.ReasonName(d.reason_id).empty());
    Check(d.bypass == (d.reason.kind != ReasonKind::kSessionRequired));
    Check(d.bypass == (d.priority > 0));
    Check(d.priority >= 0 && d.priority <= 11);
    const std::optional<IpAddress> client = c.ClientIp(view);
    if (!view.peer) Check(!client.has_value());
    if (view.peer && !view.peer->is_v4() && view.peer->bytes[0] == 0x20) {
      // 2000::/8 is no trusted proxy here: the peer is the client.
      Check(client.has_value() && *client == *view.peer);
    }
  }
  // Production only adds rule 10: a development bypass stays a bypass
  // for the same reason unless rule 10 comes first.
  const Decision dev = Make(false).Classify(view);
  const Decision prod = Make(true).Classify(view);
  if (dev.bypass &&
      !(prod.reason.kind == ReasonKind::kUnauthenticatedHtmlRequest)) {
    Check(prod.bypass && prod.reason == dev.reason);
  }
  if (!dev.bypass && prod.bypass) {
    Check(prod.reason.kind == ReasonKind::kUnauthenticatedHtmlRequest);
  }
  return 0;
}
