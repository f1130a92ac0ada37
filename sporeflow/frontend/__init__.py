"""The user-facing frontend: Tensor, Parameter, Cell, tracing, jit, transforms, nn."""
