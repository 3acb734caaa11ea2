"""hebbian-memory: a local MCP memory server that learns the way synapses do.

Importing the package has no side effects. Native libraries are loaded on first use
by ``hebbian_memory._native``, which fixes their import order (onnxruntime first).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
