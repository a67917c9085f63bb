// Clustering ops on the CPU: nearest-centre assignment, the cluster loss (forward, backward) and
// the closed-form online centre update.
//
// Assignment (see cluster_math.h for the numerics). Centres are packed once into panels of one
// or two SIMD vectors of centres, d-major (panel[d][j]), so that the micro-kernel reads one
// panel row as vectors and broadcasts one x value per row: a rows x panel block of dot products
// is held in 12 vector registers over the whole D loop (the register-blocked shape of a GEMM
// micro-kernel; x rows and one panel stay in L1). Scores of a micro-tile (rows x Kpad) go to a
// small scratch; each row then picks its approximate best and re-checks, with the exact fp64
// formula, every centre within the error bound. Rows are independent and every sum has a fixed
// order, so results do not depend on the thread count.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "../common/cpu.h"
#include "cluster_checks.h"
#include "cluster_math.h"

// The SIMD vector types below never cross a non-inlined call, so GCC's note that passing them
// by value changes the ABI without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace claus {
namespace cluster {
namespace {

constexpr int64_t kChunk = 96;  // rows per parallel work item (16 micro-tiles).

template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(32)));
};

template <typename T>
constexpr int kLanes = 32 / static_cast<int>(sizeof(T));

template <typename V, typename T>
CLAUS_ALWAYS_INLINE V load_vec(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// sum_d (x_d - c_d)^2 in fp64, in eight fixed lanes (vectorizable, order independent of D's
// alignment and of the thread count).
template <typename T>
CLAUS_ALWAYS_INLINE double exact_dist2(const T* x, const T* c, int64_t D) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    for (int j = 0; j < 8; ++j) {
      double t = static_cast<double>(x[d + j]) - static_cast<double>(c[d + j]);
      acc[j] += t * t;
    }
  }
  for (int j = 0; d < D; ++d, ++j) {
    double t = static_cast<double>(x[d]) - static_cast<double>(c[d]);
    acc[j] += t * t;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <typename T>
CLAUS_ALWAYS_INLINE double sq_norm(const T* x, int64_t D) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    for (int j = 0; j < 8; ++j) {
      double t = static_cast<double>(x[d + j]);
      acc[j] += t * t;
    }
  }
  for (int j = 0; d < D; ++d, ++j) {
    double t = static_cast<double>(x[d]);
    acc[j] += t * t;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Scores S[r][k] = ||c_k||^2 - 2 x_r.c_k of one micro-tile of R rows, for every panel of
// NV * kLanes centres.
template <typename T, int R, int NV>
CLAUS_ALWAYS_INLINE void tile_scores(const T* const* xr, const T* cpack, const T* cn, int64_t D,
                                     int64_t npanels, int64_t Kpad, T* S) {
  using V = typename VecOf<T>::type;
  constexpr int L = kLanes<T>;
  constexpr int P = NV * L;
  for (int64_t p = 0; p < npanels; ++p) {
    const T* cp = cpack + p * D * P;
    V acc[R][NV];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = V{};
    for (int64_t d = 0; d < D; ++d) {
      V b[NV];
      for (int v = 0; v < NV; ++v) b[v] = load_vec<V>(cp + d * P + v * L);
#pragma GCC unroll 12
      for (int r = 0; r < R; ++r) {
        const T a = xr[r][d];
        for (int v = 0; v < NV; ++v) acc[r][v] += a * b[v];
      }
    }
    for (int r = 0; r < R; ++r) {
      T* s = S + r * Kpad + p * P;
      const T* n = cn + p * P;
      for (int v = 0; v < NV; ++v)
        for (int j = 0; j < L; ++j) s[v * L + j] = n[v * L + j] - T(2) * acc[r][v][j];
    }
  }
}

// sum_d x_d^2 in T, eight lanes: it only feeds the error bound, whose factor-2 margin covers
// its rounding. (A separate pass: fused into the fp64 distance loop, the mixed lane widths
// vectorize worse and the row gets slower.)
template <typename T>
CLAUS_ALWAYS_INLINE T sq_norm_lanes(const T* x, int64_t D) {
  T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += x[d + j] * x[d + j];
  }
  for (int j = 0; d < D; ++d, ++j) acc[j] += x[d] * x[d];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// min_k S[k] over K >= 1 values, in eight independent lanes (vectorizes; no serial chain).
template <typename T>
CLAUS_ALWAYS_INLINE T min_lanes(const T* S, int64_t K) {
  T m[8];
  for (int j = 0; j < 8; ++j) m[j] = S[0];
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    for (int j = 0; j < 8; ++j) m[j] = S[k + j] < m[j] ? S[k + j] : m[j];
  }
  for (int j = 0; k < K; ++k, ++j) m[j] = S[k] < m[j] ? S[k] : m[j];
  T a = m[0] < m[1] ? m[0] : m[1], b = m[2] < m[3] ? m[2] : m[3];
  T e = m[4] < m[5] ? m[4] : m[5], f = m[6] < m[7] ? m[6] : m[7];
  a = a < b ? a : b;
  e = e < f ? e : f;
  return a < e ? a : e;
}

// Exact scan: the fp64 distance to every centre, best by `better` (NaN never wins).
template <typename T>
CLAUS_ALWAYS_INLINE void exact_scan(const T* x, const T* c, int64_t K, int64_t D,
                                    int64_t& best_k, double& best_d) {
  for (int64_t k = 0; k < K; ++k) {
    const double dk = exact_dist2(x, c + k * D, D);
    if (better(dk, k, best_d, best_k)) {
      best_d = dk;
      best_k = k;
    }
  }
}

// Picks row x's centre from its scores S (fast path) or by the exact formula over every centre.
// `alpha` holds 2 * coeff * ||c_k||^2 + eta per centre, so a score's error bound is
// beta + alpha[k] with beta = coeff * ||x||^2 (score_error_bound in cluster_math.h) and eta the
// absolute error of subnormal intermediates (subnormal_error). Among the
// candidates the exact distances decide, ties to the lowest index (`better`).
template <typename T>
CLAUS_ALWAYS_INLINE void select_row(const T* x, const T* c, const T* S, const T* alpha,
                                    double coeff, double cmax2, bool fast, int64_t K,
                                    int64_t D, int64_t* assign, T* dist2) {
  int64_t best_k = -1;
  double best_d = 0.0;
  bool done = false;
  if (fast) {
    const T x2 = sq_norm_lanes(x, D);
    const T beta = static_cast<T>(coeff) * x2;
    // Finite x and finite centres give NaN-free scores; +-inf (overflow) and scales where the
    // bound does not hold take the exact scan.
    const T m = min_lanes(S, K);
    if (std::isfinite(beta) && std::isfinite(m) &&
        scores_in_range<T>(static_cast<double>(x2) + 2.0 * cmax2)) {
      int64_t b = 0;
      while (S[b] != m) ++b;
      // Candidates: scores whose lower bound S_k - E_k reaches the best's upper bound S_b + E_b.
      const T thr = m + alpha[b] + T(2) * beta;
      int64_t n = 0;
      for (int64_t k = 0; k < K; ++k) n += (S[k] - alpha[k] <= thr) ? 1 : 0;
      if (n == 1) {  // the usual case: only the best itself
        best_k = b;
        best_d = exact_dist2(x, c + b * D, D);
      } else {  // a near-tie within the rounding error of the scores
        for (int64_t k = 0; k < K; ++k) {
          if (S[k] - alpha[k] <= thr) {
            const double dk = exact_dist2(x, c + k * D, D);
            if (better(dk, k, best_d, best_k)) {
              best_d = dk;
              best_k = k;
            }
          }
        }
      }
      done = true;
    }
  }
  if (!done) exact_scan(x, c, K, D, best_k, best_d);
  *assign = best_k;
  *dist2 = best_k < 0 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(best_d);
}

// Rows [i0, i1) of x (contiguous (N,D)), micro-tiles of R rows x (NV * kLanes) centres.
template <typename T, int R, int NV>
CLAUS_ALWAYS_INLINE void assign_rows_impl(const T* x, const T* c, const T* cpack, const T* cn,
                                          const T* alpha, double cmax2, bool fast, int64_t i0,
                                          int64_t i1,
                                          int64_t K, int64_t D, int64_t npanels, T* S,
                                          int64_t* assign, T* dist2) {
  const int64_t Kpad = npanels * NV * kLanes<T>;
  const double coeff = score_bound_coeff(unit_roundoff<T>(), D);
  for (int64_t t = i0; t < i1; t += R) {
    const int64_t rows = std::min<int64_t>(R, i1 - t);
    if (fast) {
      // A short tail tile repeats its last row; those scores are never read.
      const T* xr[R];
      for (int r = 0; r < R; ++r) xr[r] = x + (t + std::min<int64_t>(r, rows - 1)) * D;
      tile_scores<T, R, NV>(xr, cpack, cn, D, npanels, Kpad, S);
    }
    for (int64_t r = 0; r < rows; ++r) {
      select_row(x + (t + r) * D, c, S + r * Kpad, alpha, coeff, cmax2, fast, K, D,
                 assign + t + r, dist2 + t + r);
    }
  }
}

// Two tile shapes, each filling the 16 vector registers of AVX2 with accumulators plus loads:
// wide = 6 rows x 2 vectors of centres (K > one vector), narrow = 12 rows x 1 vector (K up to
// 8 floats / 4 doubles, e.g. the paper's K = 5), which halves the padding waste of small K.
constexpr int kWideRows = 6;
constexpr int kNarrowRows = 12;
static_assert(kChunk % kWideRows == 0 && kChunk % kNarrowRows == 0, "chunks hold whole tiles");

#define CLAUS_CLUSTER_ROWS_FNS(T)                                                               \
  CLAUS_MULTIVERSION void assign_rows_wide(const T* x, const T* c, const T* cpack, const T* cn,  \
                                           const T* alpha, double cmax2, bool fast, int64_t i0,  \
                                           int64_t i1, int64_t K, int64_t D, int64_t npanels,    \
                                           T* S, int64_t* assign, T* dist2) {                    \
    assign_rows_impl<T, kWideRows, 2>(x, c, cpack, cn, alpha, cmax2, fast, i0, i1, K, D,         \
                                      npanels, S, assign, dist2);                                \
  }                                                                                              \
  CLAUS_MULTIVERSION void assign_rows_narrow(const T* x, const T* c, const T* cpack,             \
                                             const T* cn, const T* alpha, double cmax2,          \
                                             bool fast, int64_t i0, int64_t i1, int64_t K,       \
                                             int64_t D, int64_t npanels, T* S, int64_t* assign,  \
                                             T* dist2) {                                         \
    assign_rows_impl<T, kNarrowRows, 1>(x, c, cpack, cn, alpha, cmax2, fast, i0, i1, K, D,       \
                                        npanels, S, assign, dist2);                              \
  }

CLAUS_CLUSTER_ROWS_FNS(float)
CLAUS_CLUSTER_ROWS_FNS(double)

// Assignment of contiguous x (N,D) to contiguous centers (K,D).
template <typename T>
void assign_cpu(const at::Tensor& x, const at::Tensor& centers, int64_t* assign, T* dist2) {
  const int64_t N = x.size(0), D = x.size(1), K = centers.size(0);
  const bool narrow = K <= kLanes<T>;
  const int64_t P = narrow ? kLanes<T> : 2 * kLanes<T>;
  const int64_t rows = narrow ? kNarrowRows : kWideRows;
  const int64_t npanels = (K + P - 1) / P;
  const int64_t Kpad = npanels * P;
  const T* xp = x.const_data_ptr<T>();
  const T* cp = centers.const_data_ptr<T>();

  // Packed panels (zero-padded beyond K), squared norms (fp64, rounded once) and the per-centre
  // part of the score error bound.
  std::vector<T> cpack(static_cast<size_t>(Kpad * D), T(0));
  std::vector<T> cn(static_cast<size_t>(Kpad), T(0));
  std::vector<T> alpha(static_cast<size_t>(Kpad), T(0));
  const double coeff = score_bound_coeff(unit_roundoff<T>(), D);
  bool finite = true;
  double cmax2 = 0.0;  // max_k ||c_k||^2, for scores_in_range
  for (int64_t k = 0; k < K; ++k) {
    const T* ck = cp + k * D;
    T* dst = cpack.data() + (k / P) * D * P + (k % P);
    for (int64_t d = 0; d < D; ++d) {
      dst[d * P] = ck[d];
      finite = finite && std::isfinite(static_cast<double>(ck[d]));
    }
    const double n2 = sq_norm(ck, D);
    cmax2 = std::max(cmax2, n2);
    cn[k] = static_cast<T>(n2);
    alpha[k] = static_cast<T>(2.0 * coeff * n2 + subnormal_error<T>(D));
  }
  // Non-finite centres break the error bounds (inf - inf); every row then takes the exact path.
  const bool fast = finite;
  const int64_t chunks = (N + kChunk - 1) / kChunk;
  // At least ~4M multiply-adds (~0.1 ms) per task: waking a thread, slow on a busy machine,
  // costs more than a small tile's work.
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{1} << 22) / (kChunk * Kpad * std::max<int64_t>(D, 1)));
  at::parallel_for(0, chunks, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> S(static_cast<size_t>(rows * Kpad));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t i0 = item * kChunk, i1 = std::min(N, i0 + kChunk);
      if (narrow) {
        assign_rows_narrow(xp, cp, cpack.data(), cn.data(), alpha.data(), cmax2, fast, i0, i1,
                           K, D, npanels, S.data(), assign, dist2);
      } else {
        assign_rows_wide(xp, cp, cpack.data(), cn.data(), alpha.data(), cmax2, fast, i0, i1, K,
                         D, npanels, S.data(), assign, dist2);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> cluster_assign_cpu(const at::Tensor& x,
                                                      const at::Tensor& centers) {
  check_points("claus::cluster_assign", x, centers, /*allow_half=*/false);
  const int64_t N = x.size(0);
  auto assign = at::empty({N}, x.options().dtype(at::kLong));
  auto dist2 = at::empty({N}, x.options());
  if (N == 0) return {assign, dist2};
  auto xc = x.contiguous();
  auto cc = centers.contiguous();
  if (x.scalar_type() == at::kDouble) {
    assign_cpu<double>(xc, cc, assign.mutable_data_ptr<int64_t>(),
                       dist2.mutable_data_ptr<double>());
  } else {
    assign_cpu<float>(xc, cc, assign.mutable_data_ptr<int64_t>(), dist2.mutable_data_ptr<float>());
  }
  return {assign, dist2};
}

std::tuple<at::Tensor, at::Tensor> cluster_loss_cpu(const at::Tensor& x, const at::Tensor& centers,
                                                    double beta) {
  const char* op = "claus::cluster_loss";
  check_points(op, x, centers, /*allow_half=*/false);
  CLAUS_CHECK_ARG(std::isfinite(beta), op, "beta must be finite, got ", beta);
  const int64_t N = x.size(0);
  auto assign = at::empty({N}, x.options().dtype(at::kLong));
  auto loss = at::zeros({}, x.options());
  if (N == 0) return {loss, assign};
  auto xc = x.contiguous();
  auto cc = centers.contiguous();
  // Sum of the per-row distances in fp64, in row order (deterministic).
  double total = 0.0;
  if (x.scalar_type() == at::kDouble) {
    std::vector<double> d2(static_cast<size_t>(N));
    assign_cpu<double>(xc, cc, assign.mutable_data_ptr<int64_t>(), d2.data());
    for (double v : d2) total += v;
  } else {
    std::vector<float> d2(static_cast<size_t>(N));
    assign_cpu<float>(xc, cc, assign.mutable_data_ptr<int64_t>(), d2.data());
    for (float v : d2) total += static_cast<double>(v);
  }
  loss.fill_(0.5 * beta * total / static_cast<double>(N));
  return {loss, assign};
}

// Serial range check of assign in [-1, K) (O(N), before any parallel work).
void check_assign_values(const char* op, const int64_t* a, int64_t N, int64_t K) {
  for (int64_t i = 0; i < N; ++i) {
    CLAUS_CHECK_ARG(a[i] >= -1 && a[i] < K, op, "assign values must lie in [-1, K) = [-1, ", K,
                    "), got assign[", i, "] = ", a[i]);
  }
}

template <typename T>
void loss_backward_cpu(double scale, const at::Tensor& x, const at::Tensor& c, const int64_t* a,
                       at::Tensor& gx) {
  const int64_t N = x.size(0), D = x.size(1);
  const T* xp = x.const_data_ptr<T>();
  const T* cp = c.const_data_ptr<T>();
  T* gp = gx.mutable_data_ptr<T>();
  const T s = static_cast<T>(scale);
  const int64_t grain = std::max<int64_t>(64, (int64_t{1} << 18) / std::max<int64_t>(D, 1));
  at::parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T* g = gp + i * D;
      const T* xi = xp + i * D;
      if (a[i] < 0) {
        // No centre (NaN row): the loss is NaN and so is its gradient.
        for (int64_t d = 0; d < D; ++d) g[d] = std::numeric_limits<T>::quiet_NaN();
        continue;
      }
      const T* ci = cp + a[i] * D;
      for (int64_t d = 0; d < D; ++d) g[d] = loss_grad<T>(s, xi[d], ci[d]);
    }
  });
}

at::Tensor cluster_loss_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                     const at::Tensor& centers, const at::Tensor& assign,
                                     double beta) {
  const char* op = "claus::cluster_loss_backward";
  check_points(op, x, centers, /*allow_half=*/false);
  check_assign_shape(op, assign, x);
  CLAUS_CHECK_ARG(grad.numel() == 1, op, "grad must hold one value (the loss is a scalar), ",
                  "got shape ", shape_str(grad));
  const int64_t N = x.size(0), K = centers.size(0);
  auto gx = at::empty(x.sizes(), x.options());
  if (N == 0) return gx;
  auto ac = assign.contiguous();
  check_assign_values(op, ac.const_data_ptr<int64_t>(), N, K);
  const double scale = grad.item<double>() * beta / static_cast<double>(N);
  auto xc = x.contiguous();
  auto cc = centers.contiguous();
  if (x.scalar_type() == at::kDouble) {
    loss_backward_cpu<double>(scale, xc, cc, ac.const_data_ptr<int64_t>(), gx);
  } else {
    loss_backward_cpu<float>(scale, xc, cc, ac.const_data_ptr<int64_t>(), gx);
  }
  return gx;
}

// Per-cluster sums of x in fp64, in row order; parallel over column blocks so that every sum
// has the same order for any thread count.
template <typename T>
void cluster_sums(const T* x, const int64_t* a, int64_t N, int64_t D, double* sums) {
  // Column blocks of >= 32 and >= ~256K additions per task.
  const int64_t grain = std::max<int64_t>(32, (int64_t{1} << 18) / std::max<int64_t>(N, 1));
  at::parallel_for(0, D, grain, [&](int64_t d0, int64_t d1) {
    for (int64_t i = 0; i < N; ++i) {
      if (a[i] < 0) continue;
      const T* xi = x + i * D;
      double* s = sums + a[i] * D;
      for (int64_t d = d0; d < d1; ++d) s[d] += static_cast<double>(xi[d]);
    }
  });
}

template <typename T, typename count_t>
void apply_update(T* c, count_t* n, const double* sums, const int64_t* m, int64_t K, int64_t D) {
  for (int64_t k = 0; k < K; ++k) {
    if (m[k] == 0) continue;
    const double nk = static_cast<double>(n[k]);
    const double mk = static_cast<double>(m[k]);
    for (int64_t d = 0; d < D; ++d) {
      c[k * D + d] = static_cast<T>(
          updated_center(static_cast<double>(c[k * D + d]), nk, sums[k * D + d], mk));
    }
    n[k] = static_cast<count_t>(n[k] + static_cast<count_t>(m[k]));
  }
}

template <typename T>
void update_cpu(at::Tensor& c, at::Tensor& n, const at::Tensor& x, const int64_t* a) {
  const int64_t N = x.size(0), D = x.size(1), K = c.size(0);
  std::vector<int64_t> m(static_cast<size_t>(K), 0);
  for (int64_t i = 0; i < N; ++i)
    if (a[i] >= 0) ++m[a[i]];
  std::vector<double> sums(static_cast<size_t>(K * D), 0.0);
  cluster_sums(x.const_data_ptr<T>(), a, N, D, sums.data());
  T* cp = c.mutable_data_ptr<T>();
  switch (n.scalar_type()) {
    case at::kLong: apply_update(cp, n.mutable_data_ptr<int64_t>(), sums.data(), m.data(), K, D); break;
    case at::kDouble: apply_update(cp, n.mutable_data_ptr<double>(), sums.data(), m.data(), K, D); break;
    default: apply_update(cp, n.mutable_data_ptr<float>(), sums.data(), m.data(), K, D); break;
  }
}

void update_centers_cpu(at::Tensor& centers, at::Tensor& counts, const at::Tensor& x,
                        const at::Tensor& assign) {
  const char* op = "claus::update_centers_";
  check_update(op, centers, counts, x, assign);
  const int64_t N = x.size(0), K = centers.size(0);
  // Counts are checked before anything is written, so a bad call changes nothing.
  auto nd = counts.to(at::kDouble);
  const double* np = nd.const_data_ptr<double>();
  for (int64_t k = 0; k < K; ++k) {
    CLAUS_CHECK_ARG(np[k] >= 0.0 && std::isfinite(np[k]), op,
                    "counts must be finite and >= 0, got counts[", k, "] = ", np[k]);
  }
  if (N == 0) return;
  auto ac = assign.contiguous();
  const int64_t* a = ac.const_data_ptr<int64_t>();
  check_assign_values(op, a, N, K);
  auto cc = centers.contiguous();
  auto nc = counts.contiguous();
  auto xc = x.to(centers.scalar_type()).contiguous();
  if (centers.scalar_type() == at::kDouble) update_cpu<double>(cc, nc, xc, a);
  else update_cpu<float>(cc, nc, xc, a);
  // In place even for non-contiguous arguments: write the contiguous results back.
  if (!cc.is_same(centers)) centers.copy_(cc);
  if (!nc.is_same(counts)) counts.copy_(nc);
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CPU, m) {
  m.impl("cluster_assign", &cluster_assign_cpu);
  m.impl("cluster_loss", &cluster_loss_cpu);
  m.impl("cluster_loss_backward", &cluster_loss_backward_cpu);
  m.impl("update_centers_", &update_centers_cpu);
}

}  // namespace cluster
}  // namespace claus
