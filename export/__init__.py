"""The desktop toolchain: datasets to features, model zoo, training, quantisation,
conversion and verification. Heavy dependencies (torch, onnx, litert-torch)
are imported here only, and only by the commands that need them."""
