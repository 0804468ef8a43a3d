# Read a prcy file with NCDatasets.jl. Julia lists NetCDF dimensions in the reverse order of Python:
# a variable stored as (seed, time) by xarray is magnetization[time, seed] here.
# Setup once:  julia> using Pkg; Pkg.add("NCDatasets")
using NCDatasets, Statistics

ds = NCDataset("julia_psgd.nc")
t = ds["time"][:]
m = ds["magnetization"][:, :]             # size (length(t), n_seeds)
println("dims: ", dimnames(ds["magnetization"]))          # ("time", "seed")
println("median m at t_max: ", median(abs.(m[end, :])))
println("spec: ", ds.attrib["spec"])
close(ds)

# A DMFT file: M_C is (time, time_prime) in Python, so M_C[t', t] in Julia (it is symmetric anyway);
# M_R(t, t') (t' < t, Python M_R[t, t']) is M_R[t', t] here.
