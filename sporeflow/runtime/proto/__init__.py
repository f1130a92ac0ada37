"""Protobuf schemas sporeflow reads and writes (MindSpore's checkpoint and MindIR), built as
message classes at import from the tables in checkpoint.py and mind_ir.py (schema.py does the
building); checkpoint.proto is the text of the checkpoint schema."""
