// The classifier's rules-file parser (edge/classifier/rules) on hostile
// text, as an operator's typo or a broken ConfigMap could give it.
// Properties: an error names its line ("<rules>:<n>: "); parsed rules
// either validate and compile into a classifier that classifies a request,
// or are refused with an error; and parsing is deterministic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edge/classifier/classifier.h"
#include "edge/classifier/rules.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto rules = sg::classifier::ParseRules(text);
  const auto again = sg::classifier::ParseRules(text);
  Check(rules.ok() == again.ok());
  if (!rules.ok()) {
    Check(rules.status().message().substr(0, 8) == "<rules>:");
    Check(rules.status().message() == again.status().message());
    return 0;
  }
  Check(*rules == *again);
  sg::classifier::ClassifierOptions options;
  options.trusted_proxies = {"127.0.0.1/32"};
  auto classifier = sg::classifier::Classifier::Create(*rules, options);
  if (!classifier.ok()) {
    Check(!rules->Validate().ok());
    return 0;
  }
  sg::classifier::RequestView view;
  view.method = "GET";
  view.target = "/assets/app.js?v=1";
  view.user_agent = "Mozilla/5.0";
  view.accept = "text/html";
  view.cookie = "connect.sid=s%3Aabc.def";
  view.peer = sg::classifier::IpAddress::Parse("203.0.113.7");
  const sg::classifier::Decision d = (*classifier)->Classify(view);
  Check(d.reason_id < (*classifier)->num_reasons());
  return 0;
}
