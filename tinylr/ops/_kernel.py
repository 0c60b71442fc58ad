"""What an op's `lower()` returns: a kernel call and the constant data it needs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConstArray:
    """A constant array placed in flash by the generated data file."""

    name: str        # C identifier (already sanitized and unique)
    ctype: str       # "int8_t", "int16_t", "int32_t", "float"
    values: tuple    # ints, or floats for ctype "float"
    comment: str = ""

    @property
    def nbytes(self) -> int:
        return len(self.values) * {"int8_t": 1, "uint8_t": 1, "int16_t": 2}.get(self.ctype, 4)


@dataclass(frozen=True)
class KernelCall:
    kernel: str                      # kernel file name, e.g. "fully_connected"
    function: str                    # C function to call
    params_type: str                 # C struct type of the constant parameters
    params: tuple[tuple[str, str], ...]  # (field, C initializer) in declaration order
    arrays: tuple[ConstArray, ...] = field(default=())
    # Tensors passed at run time, in the kernel's argument order: activations get
    # their planned address, constant tensors a const array emitted by the generator.
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()
    # True: pass `inputs` as one array argument (`const int8_t *const *`), for ops
    # with any number of inputs such as CONCATENATION.
    inputs_as_array: bool = False
