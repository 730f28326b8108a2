"""The kernels compiled for AVX2 + FMA (see skdbn._kernels)."""
