# Public Cython API of prcy.kernels.dynamics: see the module docstring in dynamics.pyx.
from cython cimport floating
from libc.stdint cimport int64_t
from numpy.random cimport bitgen_t
from prcy.kernels.losses cimport Loss, CommitteeLoss
from prcy.kernels.optimizers cimport Optimizer
from prcy.kernels.problems cimport Problem
from prcy.kernels.switching cimport Switching

cdef enum StopReason:
    STOP_MAX_TIME = 0
    STOP_CONVERGED = 1
    STOP_DIVERGED = 2
    STOP_INTERRUPTED = 3
    STOP_STATIONARY = 4          # max_j |G_j| < grad_tol (G: the step's gradient, tangent part on the sphere)

cdef enum InitKind:
    INIT_WARM = 0                # w(0) = m0 w0 + c z_perp on the sphere; m0 w0 + z with the ridge
    INIT_RANDOM = 1              # uniform on the sphere; N(0, variance I) with the ridge
    INIT_GIVEN = 2               # given per seed (run_seeds' w_init: the spectral start)

ctypedef struct Dynamics:
    const Loss* loss
    Py_ssize_t m                 # training samples
    Py_ssize_t n                 # dimension
    Py_ssize_t m_test            # held-out samples (0: none)
    double eta                   # learning rate = physical time per step
    double grad_scale            # 1/ell with rescaling, else 1
    double ridge                 # lambda (0 on the sphere)
    int sphere                   # project back to |w|^2 = n after every step
    int64_t n_steps
    int64_t check_every          # full-loss check period when not every sample is active
    double tol                   # success: training loss per sample < tol
    int early_stop               # stop a seed at success, carrying its state forward
    double grad_tol              # > 0: stop a seed when max_j |G_j| < grad_tol (STOP_STATIONARY)
    Optimizer opt                # the update rule
    const int64_t* record_steps  # increasing, first 0, last n_steps
    Py_ssize_t n_record
    const int64_t* temp_starts   # temp_values[i] applies from step temp_starts[i]; temp_starts[0] = 0
    const double* temp_values
    Py_ssize_t n_temp
    const int* abort             # non-zero: every seed stops (STOP_INTERRUPTED)

ctypedef struct Record:
    double* magnetization        # n_record values each: w.w0/n
    double* norm                 # |w|^2/n
    double* train_loss           # sum_mu v(h_mu; y_mu) / m
    double* train_error          # sum_mu err(h_mu; y_mu) / m (classification: the fraction misclassified)
    double* test_error           # empirical held-out error (NaN when m_test = 0)
    double* weights              # NULL, or n_record x n: w at the recording steps (Hessian observables)
    int64_t solved_step          # first checked step with train_loss < tol, -1 if never
    int64_t stop_step
    int stop_reason

ctypedef struct Scratch:
    double* g                    # n
    double* opt_state            # opt.n_state * n, zero at the start of a trajectory
    Py_ssize_t* active           # m
    unsigned char* state         # m
    int64_t* next_flip           # m

cdef double field_dot(const floating* x, const double* w, Py_ssize_t n) noexcept nogil
cdef double gradient_pass(const floating* X, Py_ssize_t n, const Py_ssize_t* rows, Py_ssize_t n_rows,
                          const double* y, const double* w, const Loss* loss, double coef,
                          double* g) noexcept nogil
cdef double loss_pass(const floating* X, Py_ssize_t n, Py_ssize_t m, const double* y, const double* w,
                      const Loss* loss, int use_err) noexcept nogil
cdef void generate_data(bitgen_t* rng, const Problem* problem, Py_ssize_t m, Py_ssize_t n, Py_ssize_t m_test,
                        double* w0, floating* X, double* y, floating* Xt, double* yt,
                        int shuffle_labels) noexcept nogil
cdef void init_weights(bitgen_t* rng, const double* w0, Py_ssize_t n, int kind, double m0, double variance,
                       int sphere, double* w) noexcept nogil
cdef void trajectory(const Dynamics* d, const floating* X, const double* y, const floating* Xt,
                     const double* yt, const double* w0, double* w, Switching* sw, Scratch* work,
                     bitgen_t* rng, const double* noise_replay, Record* rec, int64_t* progress) noexcept nogil

# A student with K hidden units (a committee; the module docstring says what a step and a record do)
ctypedef struct Committee:
    const CommitteeLoss* loss
    Py_ssize_t k                 # hidden units: the weights are k rows of n (row-major k x n)
    Py_ssize_t block             # rows per block of the BLAS path; 0: blocks of eight rows, one unit at a time

ctypedef struct CommitteeScratch:
    double* xb                   # block x n: a block of rows in float64 (BLAS path)
    double* h                    # max(block, 8) x k: the block's fields
    double* c                    # max(block, 8) x k: the block's loss derivatives times coef/sqrt(n)
    double* q                    # k x k: the overlap matrix W W^T / n at a record

ctypedef struct CommitteeRecord:
    double* unit_magnetization   # n_record x k: w_k.w0/n
    double* overlap              # NULL, or n_record x k x k: W W^T/n
    double* a_square             # n_record: |A|_F^2 = |Q|_F^2/k^2, A = W^T W/(k n)

cdef double committee_pass(const floating* X, Py_ssize_t n, const Py_ssize_t* rows, Py_ssize_t n_rows,
                           const double* y, const double* W, const Committee* c, double coef, double* G,
                           int use_err, CommitteeScratch* cw) noexcept nogil
cdef void committee_trajectory(const Dynamics* d, const Committee* c, const floating* X, const double* y,
                               const floating* Xt, const double* yt, const double* w0, double* W, Switching* sw,
                               Scratch* work, CommitteeScratch* cw, bitgen_t* rng, const double* noise_replay,
                               Record* rec, CommitteeRecord* crec, int64_t* progress) noexcept nogil
