# The same run handing X over with DLPack.jl: DLPack reverses the dimensions, so the N x M Julia matrix
# arrives in Python as a C-ordered M x N array: rows are samples, sample_axis=0, still no copy.
# Setup once:  julia> using Pkg; Pkg.add(["PythonCall", "DLPack"])
using PythonCall, DLPack, LinearAlgebra, Random

np = pyimport("numpy")
data = pyimport("prcy.data")

N, M = 500, 1500
Random.seed!(1)
X = randn(N, M)
w0 = randn(N); w0 .*= sqrt(N) / norm(w0)

Xpy = DLPack.share(X, np.from_dlpack)     # numpy array of shape (M, N), C-ordered, sharing X's memory
ds = data.simulate_data(Xpy; teacher=w0, sample_axis=0, algorithm="gd", m0=0.2, t_max=100, seeds=1)
println("copied inputs: ", ds.attrs["copied_inputs"])
