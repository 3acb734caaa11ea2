"""Text to vectors: the embedder protocol, the bundled ONNX model and its quantized copy."""

__all__ = []
