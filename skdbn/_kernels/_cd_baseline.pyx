# The CD kernels of _cd.pyx, compiled with the portable flags: the build
# that runs on every CPU (skdbn._kernels picks it when _cd_avx2 cannot run).
include "_cd.pyx"
