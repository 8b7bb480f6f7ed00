#pragma once
// One HTTP/2 header field (lower-case name) as the gateway's HTTP/2 code passes them around.
#include <string>
#include <vector>

namespace portcullis {

struct H2Header {
  std::string name;
  std::string value;
};
using H2Headers = std::vector<H2Header>;

}  // namespace portcullis
