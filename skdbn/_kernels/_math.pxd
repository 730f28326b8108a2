# Element-wise math that the compiler can vectorise.
#
# glibc's expf is a function call, which stops gcc from vectorising the
# sigmoid-and-sample loops (the docs' Results page, "Kernel design", has the
# timings). The float version below is the
# Cephes expf: Cody-Waite reduction, a degree-5 minimax polynomial and the
# scaling 2^n written into the exponent bits; max relative error 1.4 ulp on
# [-87, 88] (checked against exp in double precision). NaN propagates
# (``x > 88 ? 88 : x`` keeps NaN), so a diverging model stays detectable.
# Double precision keeps libm's exp, except for skdbn_exp, the softmax over a
# whole vocabulary's (the Replicated Softmax), where libm's calls cost a
# quarter of an epoch.
#
# skdbn_softplusf(x) = log(1 + e^x) = max(x, 0) + log(1 + e^-|x|) uses the
# Cephes logf polynomial on the mantissa of 1 + e^-|x| in [1, 2]: absolute
# error below 1e-7, which is what a sum of softplus terms needs.
#
# skdbn_normalf turns two 32-bit hashes into a standard normal by Box-Muller
# on the same log polynomial and a sine series (see its comment).
from cython cimport floating
from libc.stdint cimport uint32_t
from libc.math cimport exp, expf, log1p, log1pf, fabs, fabsf

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    static inline float skdbn_expf(float x) {
        x = x > 88.0f ? 88.0f : x;
        x = x < -87.0f ? -87.0f : x;
        /* n = round(x / ln 2) by the 1.5 * 2^23 trick; the integer is in the
           low mantissa bits of t. */
        float t = x * 1.44269504088896341f + 12582912.0f;
        float n = t - 12582912.0f;
        int32_t ni;
        memcpy(&ni, &t, sizeof ni);
        ni -= 0x4B400000;
        float r = x - n * 0.693359375f;
        r = r - n * -2.12194440e-4f;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        p = p * r * r + r + 1.0f;
        int32_t bits = (ni + 127) << 23;
        float scale;
        memcpy(&scale, &bits, sizeof scale);
        return p * scale;
    }
    /* exp in double precision without a call, so that loops of it
       vectorise: the Cephes exp (Cody-Waite reduction by ln 2 in two
       parts, then the Pade form 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)) on
       |r| <= ln(2) / 2), 2^n written into the exponent bits. Within 2 ulp
       of libm's exp on [-708, 709] (checked in the tests); clamped there,
       so that 2^n stays a normal number. NaN propagates. */
    static inline double skdbn_exp(double x) {
        x = x > 709.0 ? 709.0 : x;
        x = x < -708.0 ? -708.0 : x;
        double t = x * 1.4426950408889634074 + 6755399441055744.0;
        double n = t - 6755399441055744.0;   /* round(x / ln 2) by 1.5 * 2^52 */
        int64_t ni;
        memcpy(&ni, &t, sizeof ni);
        ni -= 0x4338000000000000LL;
        double r = x - n * 6.93145751953125e-1;
        r = r - n * 1.42860682030941723212e-6;
        double rr = r * r;
        double p = ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
                    + 9.99999999999999999910e-1) * r;
        double q = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
                    + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0;
        double e = 1.0 + 2.0 * (p / (q - p));
        int64_t bits = (ni + 1023) << 52;
        double scale;
        memcpy(&scale, &bits, sizeof scale);
        return e * scale;
    }
    /* log(2^e m) for m in [sqrt(1/2), sqrt(2)): the Cephes logf
       polynomial on the mantissa, e ln 2 in two parts. */
    static inline float skdbn_logf_parts(float m, float e) {
        float t = m - 1.0f;
        float t2 = t * t;
        float y = 7.0376836292e-2f;
        y = y * t - 1.1514610310e-1f;
        y = y * t + 1.1676998740e-1f;
        y = y * t - 1.2420140846e-1f;
        y = y * t + 1.4249322787e-1f;
        y = y * t - 1.6668057665e-1f;
        y = y * t + 2.0000714765e-1f;
        y = y * t - 2.4999993993e-1f;
        y = y * t + 3.3333331174e-1f;
        y = y * t * t2;
        y += -2.12194440e-4f * e;
        y += -0.5f * t2;
        return t + y + 0.693359375f * e;
    }
    static inline float skdbn_softplusf(float x) {
        float ax = x < 0.0f ? -x : x;
        float z = 1.0f + skdbn_expf(-ax);          /* in (1, 2] */
        /* z = 2^e m with m in [sqrt(1/2), sqrt(2)) */
        float e = z > 1.41421356f ? 1.0f : 0.0f;
        float m = z > 1.41421356f ? 0.5f * z : z;
        return (x > 0.0f ? x : 0.0f) + skdbn_logf_parts(m, e);
    }
    /* A standard normal from two 32-bit hashes by Box-Muller,
       sqrt(-2 log u1) cos(2 pi u2), in float arithmetic with polynomials
       instead of libm calls, so that loops of draws vectorise (libm's log
       and cos in double cost as much per draw as the CD step's products per
       element). u1 = (h1 / 4 + 1) / 2^30 lies in
       (0, 1], so draws reach 6.45 standard deviations.
       log u1: u1 = 2^e m with m in [sqrt(1/2), sqrt(2)), log m by the Cephes
       logf polynomial (skdbn_logf_parts), e ln 2 in two parts.
       cos(2 pi u2) = sin(2 pi b) with b = |u2 - 1/2| - 1/4 in [-1/4, 1/4],
       sin by its Taylor series to y^13 (truncation below 7e-10 on
       [-pi/2, pi/2]). Both are within a few float ulps of the exact
       transform: the draws have the normal distribution to float precision. */
    static inline float skdbn_normalf(uint32_t h1, uint32_t h2) {
        float u1 = (float) (int32_t) ((h1 >> 2) + 1u) * 9.31322574615478515625e-10f;
        int32_t bits;
        memcpy(&bits, &u1, sizeof bits);
        float e = (float) (((bits >> 23) & 0xff) - 127);
        int32_t mbits = (bits & 0x007fffff) | 0x3f800000;
        float m;
        memcpy(&m, &mbits, sizeof m);
        e = m > 1.41421356f ? e + 1.0f : e;
        m = m > 1.41421356f ? 0.5f * m : m;
        float log_u1 = skdbn_logf_parts(m, e);
        float r = -2.0f * log_u1;
        r = r > 0.0f ? r : 0.0f;  /* u1 = 1 may give -0 */
        float u2 = (float) (int32_t) (h2 >> 8) * 5.9604644775390625e-08f;
        float b = u2 - 0.5f;
        b = (b < 0.0f ? -b : b) - 0.25f;
        float x = 6.28318530717958648f * b;
        float x2 = x * x;
        float s = 1.6059043836821615e-10f;          /*  1 / 13! */
        s = s * x2 - 2.5052108385441720e-08f;       /* -1 / 11! */
        s = s * x2 + 2.7557319223985893e-06f;       /*  1 / 9!  */
        s = s * x2 - 1.9841269841269841e-04f;       /* -1 / 7!  */
        s = s * x2 + 8.3333333333333333e-03f;       /*  1 / 5!  */
        s = s * x2 - 1.6666666666666667e-01f;       /* -1 / 3!  */
        s = s * x2 * x + x;
        return sqrtf(r) * s;
    }
    """
    float skdbn_expf(float x) noexcept nogil
    double skdbn_exp(double x) noexcept nogil
    float skdbn_softplusf(float x) noexcept nogil
    float skdbn_normalf(uint32_t h1, uint32_t h2) noexcept nogil


cdef inline floating sigmoid(floating x) noexcept nogil:
    cdef float one = 1  # a 1.0 literal would promote the division to double
    if floating is float:
        return one / (one + skdbn_expf(-x))
    else:
        return 1.0 / (1.0 + exp(-x))


cdef inline floating softplus(floating x) noexcept nogil:
    """log(1 + e^x) without overflow (libm; see skdbn_softplusf for speed)."""
    if floating is float:
        return (x if x > 0 else 0) + log1pf(expf(-fabsf(x)))
    else:
        return (x if x > 0 else 0) + log1p(exp(-fabs(x)))
