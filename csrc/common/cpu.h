// Helpers for the CPU kernels (never included by .cu files).
#pragma once

#include <cstdlib>

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
// Builds a hot function for AVX2+FMA and for baseline x86-64; the loader picks one by the CPU
// (GNU ifunc). Apply to non-template functions; inline the templated body into them.
#define CLAUS_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
// A function compiled for AVX-512 (the x86-64-v4 feature set). Call it only where
// cpu_has_avx512() is true; kernels pair it with a CLAUS_MULTIVERSION fallback.
#define CLAUS_TARGET_AVX512 \
  __attribute__((target("avx2,fma,bmi,bmi2,avx512f,avx512dq,avx512bw,avx512vl")))
#define CLAUS_HAVE_AVX512_PATH 1
#else
#define CLAUS_MULTIVERSION
#define CLAUS_HAVE_AVX512_PATH 0
#endif

// Forces inlining of a templated kernel body into its multiversioned caller, so the body is
// compiled for the caller's instruction set.
#define CLAUS_ALWAYS_INLINE inline __attribute__((always_inline))

namespace claus {

// Whether this CPU runs the CLAUS_TARGET_AVX512 code paths. CLAUS_CPU_NO_AVX512=1 in the
// environment turns them off (to compare the paths, or to test the AVX2 one on an AVX-512
// machine); both are read once per process.
inline bool cpu_has_avx512() {
  static const bool has = [] {
#if CLAUS_HAVE_AVX512_PATH
    const char* off = std::getenv("CLAUS_CPU_NO_AVX512");
    if (off != nullptr && off[0] != '\0' && !(off[0] == '0' && off[1] == '\0')) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
           __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
  }();
  return has;
}

}  // namespace claus
