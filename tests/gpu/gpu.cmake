# the conformance suite on the CUDA backend
