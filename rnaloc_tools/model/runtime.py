"""ONNX Runtime, imported on demand, without torch (``predict`` needs no PyTorch import: ~5 s)."""

from ..errors import MissingDependencyError


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "ONNX Runtime is not installed: pip install 'rnaloc-tools[cpu]' (onnxruntime) "
            "or 'rnaloc-tools[gpu]' (onnxruntime-gpu), not both"
        ) from None
    return onnxruntime
