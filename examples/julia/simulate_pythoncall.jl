# Persistent SGD on Julia data through PythonCall.jl (no copy of X).
# Setup once:  julia> using Pkg; Pkg.add(["PythonCall", "CondaPkg"]);
#              then point PythonCall at the Python that has prcy:  ENV["JULIA_PYTHONCALL_EXE"] = "/path/to/venv/bin/python"
using PythonCall, LinearAlgebra, Random

np = pyimport("numpy")
data = pyimport("prcy.data")
io = pyimport("prcy.io")

N, M = 500, 1500                          # alpha = 3
Random.seed!(1)
X = randn(N, M)                           # one sample per column: Julia's natural layout
w0 = randn(N); w0 .*= sqrt(N) / norm(w0)  # teacher on the sphere |w0|^2 = N

# PythonCall passes X as a column-major N x M view: sample_axis=1 says the columns are samples, and the
# samples are contiguous in memory, so prcy reads X in place (ds.attrs["copied_inputs"] == 0).
ds = data.simulate_data(X; teacher=w0, sample_axis=1, algorithm="psgd", lr=0.01, batch_fraction=0.5,
                        persistence=1.0, m0=0.2, t_max=100, seeds=8)
println("copied inputs: ", ds.attrs["copied_inputs"])
io.write_dataset(ds, "julia_psgd.nc"; overwrite=true)
println(ds.magnetization.median("seed").values)
