"""tinylr: low-rank TinyML deployment toolchain for Cortex-M microcontrollers.

Data flows one way: torch model -> .onnx -> .tflite -> IR -> C sources -> ELF -> report.
Each stage is a module; `tinylr.cli` exposes one subcommand per stage.
"""

__version__ = "0.1.0"
