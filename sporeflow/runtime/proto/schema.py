"""Protobuf message classes from small schema tables, without protoc or generated code.

A schema is {message name: [(field name, number, label, type, message type)]}; nested messages
are written "Outer.Inner". `build(file_name, package, schema)` registers a FileDescriptorProto in
a private descriptor pool and returns {message name: class}. The tables mirror the .proto files
in this folder field for field (name, number, label, type), which is all the wire format depends on.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
OPTIONAL, REQUIRED, REPEATED = F.LABEL_OPTIONAL, F.LABEL_REQUIRED, F.LABEL_REPEATED
TYPES = {"string": F.TYPE_STRING, "bytes": F.TYPE_BYTES, "int64": F.TYPE_INT64, "int32": F.TYPE_INT32,
         "uint64": F.TYPE_UINT64, "float": F.TYPE_FLOAT, "double": F.TYPE_DOUBLE, "bool": F.TYPE_BOOL,
         "message": F.TYPE_MESSAGE, "enum": F.TYPE_ENUM}
Field = tuple  # (name, number, label, type name, message/enum type name or None)

_POOL = descriptor_pool.DescriptorPool()


def build(file_name: str, package: str, messages: dict[str, list[Field]], syntax: str = "proto2",
          enums: dict[str, dict[str, int]] | None = None) -> dict[str, type]:
    fdp = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax=syntax)
    protos: dict[str, descriptor_pb2.DescriptorProto] = {}
    for full in messages:  # parents before children: "A" is listed before "A.B"
        outer, _, inner = full.rpartition(".")
        proto = (protos[outer].nested_type.add() if outer else fdp.message_type.add())
        proto.name = inner or full
        protos[full] = proto
    for name, values in (enums or {}).items():
        outer, _, inner = name.rpartition(".")
        e = protos[outer].enum_type.add() if outer else fdp.enum_type.add()
        e.name = inner or name
        for k, v in values.items():
            e.value.add(name=k, number=v)
    for full, fields in messages.items():
        for fname, number, label, ftype, ref in fields:
            f = protos[full].field.add(name=fname, number=number, label=label, type=TYPES[ftype])
            if ref is not None:
                f.type_name = f".{package}.{ref}" if package else f".{ref}"
            if label == REPEATED and ftype in ("int64", "int32", "float", "double", "bool") and syntax == "proto3":
                f.options.packed = True
    _POOL.Add(fdp)
    prefix = f"{package}." if package else ""
    return {full: message_factory.GetMessageClass(_POOL.FindMessageTypeByName(prefix + full)) for full in messages}
