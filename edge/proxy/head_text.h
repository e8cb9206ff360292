// A message head as one contiguous string, byte for byte what Beast's
// serializer would write for it. The proxy writes heads this way when no
// chunk framing follows: one buffer instead of the serializer's sequence
// of a few buffers per field, whose walking was the largest user-space
// share of a bypassed request after the kernel (bench/RESULTS.md).
#pragma once

#include <boost/beast/http/message.hpp>
#include <string>
#include <string_view>

namespace sg::edge::proxy {

// Appends "METHOD target HTTP/x.y\r\n", each field as "Name: value\r\n",
// `extra_fields` (more such lines, written as they are), then "\r\n".
void AppendHeadText(const boost::beast::http::request_header<>& head,
                    std::string& out, std::string_view extra_fields = {});

// Appends "HTTP/x.y NNN reason\r\n" (the standard reason when the head has
// none), each field, then "\r\n".
void AppendHeadText(const boost::beast::http::response_header<>& head,
                    std::string& out);

}  // namespace sg::edge::proxy
