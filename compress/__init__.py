"""Compression (host side): ranking distillation of recommenders, distillation of content encoders,
quantization of ONNX/TFLite files (weight-only int8 on one grid, dynamic, static, fp16) and of item tables."""
