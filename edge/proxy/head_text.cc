#include "edge/proxy/head_text.h"

namespace sg::edge::proxy {
namespace {

namespace http = boost::beast::http;

void Append(std::string& out, boost::beast::string_view s) {
  out.append(s.data(), s.size());
}

void AppendVersion(unsigned version, std::string& out) {
  out.append("HTTP/");
  out.push_back(static_cast<char>('0' + version / 10));
  out.push_back('.');
  out.push_back(static_cast<char>('0' + version % 10));
}

void AppendFields(const http::fields& fields, std::string_view extra_fields,
                  std::string& out) {
  for (const auto& f : fields) {
    Append(out, f.name_string());
    out.append(": ");
    Append(out, f.value());
    out.append("\r\n");
  }
  out.append(extra_fields);
  out.append("\r\n");
}

}  // namespace

void AppendHeadText(const http::request_header<>& head, std::string& out,
                    std::string_view extra_fields) {
  Append(out, head.method_string());
  out.push_back(' ');
  Append(out, head.target());
  out.push_back(' ');
  AppendVersion(head.version(), out);
  out.append("\r\n");
  AppendFields(head, extra_fields, out);
}

void AppendHeadText(const http::response_header<>& head, std::string& out) {
  AppendVersion(head.version(), out);
  const unsigned code = head.result_int();
  out.push_back(' ');
  out.push_back(static_cast<char>('0' + code / 100));
  out.push_back(static_cast<char>('0' + code / 10 % 10));
  out.push_back(static_cast<char>('0' + code % 10));
  out.push_back(' ');
  Append(out, head.reason());  // the standard one when the head has none
  out.append("\r\n");
  AppendFields(head, {}, out);
}

}  // namespace sg::edge::proxy
