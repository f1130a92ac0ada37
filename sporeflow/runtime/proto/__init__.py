"""Protobuf schemas sporeflow reads and writes (MindSpore's checkpoint and MindIR), built as
message classes at import from tables in schema.py; the .proto files beside it are the text."""
