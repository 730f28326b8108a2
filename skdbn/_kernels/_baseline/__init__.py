"""The kernels compiled with the portable flags (see skdbn._kernels)."""
