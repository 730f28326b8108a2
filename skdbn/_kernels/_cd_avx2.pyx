# The CD kernels of _cd.pyx, compiled a second time with AVX2 and FMA (see
# setup.py): skdbn._kernels picks this copy at import on CPUs that have them.
include "_cd.pyx"
