// Argument checks shared by the torch glue of every op (never included by .cu files).
#pragma once

#include <ATen/ATen.h>

#include <sstream>
#include <string>

namespace claus {

inline std::string shape_str(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

#define CLAUS_CHECK_ARG(cond, op, ...) TORCH_CHECK_VALUE(cond, op, ": ", __VA_ARGS__)

inline void check_same_device(const char* op, const at::Tensor& a, const char* an,
                              const at::Tensor& b, const char* bn) {
  TORCH_CHECK(a.device() == b.device(), op, ": ", an, " is on ", a.device(), " but ", bn,
              " is on ", b.device(), "; move them to one device");
}

}  // namespace claus
