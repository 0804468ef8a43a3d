# Public Cython API of prcy.kernels.switching: see the module docstring in switching.pyx.
from libc.stdint cimport int64_t
from numpy.random cimport bitgen_t

cdef enum SelectionKind:
    SELECT_FULL = 0          # every sample, every step (GD, Langevin)
    SELECT_BERNOULLI = 1     # i.i.d. Bernoulli(ell) at every step (multi-pass SGD, eq 6)
    SELECT_PERSISTENT = 2    # two-state Markov chain of eq 7 (persistent SGD)
    SELECT_REPLAY = 3        # a given 0/1 matrix, row k used at step k (tests, user schedules)

ctypedef struct Switching:
    int kind
    Py_ssize_t m                  # number of samples
    double ell                    # stationary active fraction
    double log_stay_off           # log(1 - P(0->1)) per step
    double log_stay_on            # log(1 - P(1->0)) per step
    unsigned char* state          # s_mu at the current step (PERSISTENT), length m
    int64_t* next_flip            # step at which s_mu next flips (PERSISTENT), length m
    const unsigned char* replay   # n_steps x m row-major (REPLAY)

cdef int64_t geometric(bitgen_t* rng, double log_stay) noexcept nogil
cdef void switching_init(Switching* sw, int kind, Py_ssize_t m, double ell, double p_on, double p_off,
                         unsigned char* state, int64_t* next_flip, const unsigned char* replay) noexcept nogil
cdef void switching_start(Switching* sw, bitgen_t* rng) noexcept nogil
cdef Py_ssize_t switching_select(Switching* sw, int64_t step, bitgen_t* rng, Py_ssize_t* active) noexcept nogil
