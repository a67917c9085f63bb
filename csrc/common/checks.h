// Argument checks shared by the torch glue of every op (never included by .cu files).
//
// Messages are assembled with std::string and snprintf rather than std::ostream: where the
// extension's C++ runtime and torch's differ (a statically linked libstdc++ in some Python
// builds), formatting a number through an ostream in extension code crashed instead of
// raising. A single std::string goes through TORCH_CHECK without an ostream.
#pragma once

#include <ATen/ATen.h>

#include <cstdio>
#include <string>
#include <type_traits>

namespace claus {
namespace detail {

inline void append(std::string& s, const char* v) { s += v; }
inline void append(std::string& s, const std::string& v) { s += v; }
inline void append(std::string& s, at::ScalarType v) { s += c10::toString(v); }
inline void append(std::string& s, const c10::Device& v) { s += v.str(); }
inline void append(std::string& s, c10::IntArrayRef v) {
  s += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  s += ']';
}
template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
void append(std::string& s, T v) {
  s += std::to_string(v);
}
template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
void append(std::string& s, T v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
  s += buf;
}

}  // namespace detail

// Concatenates strings, numbers, dtypes, devices and shapes into one message.
template <typename... Args>
std::string cat(const Args&... args) {
  std::string s;
  (detail::append(s, args), ...);
  return s;
}

inline std::string shape_str(const at::Tensor& t) { return cat(t.sizes()); }

#define CLAUS_CHECK_ARG(cond, op, ...) \
  TORCH_CHECK_VALUE(cond, ::claus::cat(op, ": ", __VA_ARGS__))

inline void check_same_device(const char* op, const at::Tensor& a, const char* an,
                              const at::Tensor& b, const char* bn) {
  TORCH_CHECK(a.device() == b.device(),
              cat(op, ": ", an, " is on ", a.device(), " but ", bn, " is on ", b.device(),
                  "; move them to one device"));
}

}  // namespace claus
