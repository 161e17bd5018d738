"""Export (host side): PyTorch -> ONNX / TFLite, parity checks against PyTorch, the bundle writer,
the compression report, content-encoder export and the cold-start check."""
