"""Export a trained checkpoint to ONNX, verify it, quantize it, and run it on CPU devices without torch."""
