// Helpers for the CPU kernels (never included by .cu files).
#pragma once

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
// Builds a hot function for AVX2+FMA and for baseline x86-64; the loader picks one by the CPU
// (GNU ifunc). Apply to non-template functions; inline the templated body into them.
#define CLAUS_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLAUS_MULTIVERSION
#endif

// Forces inlining of a templated kernel body into its multiversioned caller, so the body is
// compiled for the caller's instruction set.
#define CLAUS_ALWAYS_INLINE inline __attribute__((always_inline))
