"""The part of MindSpore's MindIR schema (`mind_ir.proto`, package mind_ir) that sporeflow
writes and reads: a ModelProto holding one GraphProto of NodeProtos, weights as TensorProtos,
attributes as AttributeProtos. Field names and numbers are MindSpore's; fields sporeflow never
sets are left out (protobuf keeps unknown fields when it reads a fuller file)."""
from .schema import OPTIONAL, REPEATED, build

ATTRIBUTE_TYPES = {"UNDEFINED": 0, "FLOAT": 1, "UINT8": 2, "INT8": 3, "UINT16": 4, "INT16": 5, "INT32": 6,
                   "INT64": 7, "STRING": 8, "BOOL": 9, "FLOAT16": 10, "DOUBLE": 11, "UINT32": 12, "UINT64": 13,
                   "COMPLEX64": 14, "COMPLEX128": 15, "BFLOAT16": 16, "TENSOR": 17, "GRAPH": 18, "TENSORS": 19,
                   "TUPLE": 20, "LIST": 21, "DICT": 22, "NONE": 25}
TENSOR_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "bool": 9,
                "float16": 10, "float64": 11, "uint32": 12, "uint64": 13, "bfloat16": 16}

_M = build("sporeflow/mind_ir.proto", "mind_ir", {
    "AttributeProto": [("name", 1, OPTIONAL, "string", None), ("f", 2, OPTIONAL, "float", None),
                       ("i", 3, OPTIONAL, "int64", None), ("d", 4, OPTIONAL, "double", None),
                       ("s", 5, OPTIONAL, "bytes", None), ("t", 6, OPTIONAL, "message", "TensorProto"),
                       ("g", 7, OPTIONAL, "message", "GraphProto"), ("ints", 10, REPEATED, "int64", None),
                       ("doc_string", 14, OPTIONAL, "string", None),
                       ("type", 16, OPTIONAL, "enum", "AttributeProto.AttributeType"),
                       ("values", 17, REPEATED, "message", "AttributeProto"),
                       ("type_val", 18, OPTIONAL, "enum", "AttributeProto.AttributeType")],
    "ValueInfoProto": [("name", 1, OPTIONAL, "string", None), ("tensor", 2, REPEATED, "message", "TensorProto"),
                       ("doc_string", 3, OPTIONAL, "string", None), ("denotation", 4, OPTIONAL, "string", None)],
    "NodeProto": [("input", 1, REPEATED, "string", None), ("output", 2, REPEATED, "string", None),
                  ("name", 3, OPTIONAL, "string", None), ("op_type", 4, OPTIONAL, "string", None),
                  ("attribute", 5, REPEATED, "message", "AttributeProto"),
                  ("doc_string", 6, OPTIONAL, "string", None), ("domain", 7, OPTIONAL, "string", None)],
    "ModelProto": [("ir_version", 1, OPTIONAL, "string", None), ("producer_name", 2, OPTIONAL, "string", None),
                   ("producer_version", 3, OPTIONAL, "string", None), ("domain", 4, OPTIONAL, "string", None),
                   ("model_version", 5, OPTIONAL, "string", None), ("doc_string", 6, OPTIONAL, "string", None),
                   ("graph", 7, OPTIONAL, "message", "GraphProto"),
                   ("functions", 8, REPEATED, "message", "GraphProto"),
                   ("little_endian", 10, OPTIONAL, "bool", None)],
    "GraphProto": [("node", 1, REPEATED, "message", "NodeProto"), ("name", 2, OPTIONAL, "string", None),
                   ("parameter", 3, REPEATED, "message", "TensorProto"), ("doc_string", 4, OPTIONAL, "string", None),
                   ("input", 5, REPEATED, "message", "ValueInfoProto"),
                   ("output", 6, REPEATED, "message", "ValueInfoProto")],
    "TensorProto": [("dims", 1, REPEATED, "int64", None), ("data_type", 2, OPTIONAL, "int32", None),
                    ("name", 7, OPTIONAL, "string", None), ("doc_string", 8, OPTIONAL, "string", None),
                    ("raw_data", 9, OPTIONAL, "bytes", None)],
}, enums={"AttributeProto.AttributeType": ATTRIBUTE_TYPES})
AttributeProto, ValueInfoProto, NodeProto, ModelProto, GraphProto, TensorProto = (
    _M[k] for k in ("AttributeProto", "ValueInfoProto", "NodeProto", "ModelProto", "GraphProto", "TensorProto"))
